import type pg from 'pg';
import { fingerprint, fingerprintText } from '../fingerprint.js';
import { type RawRows, type RawText, type Row, setField } from '../sdk.js';

/**
 * The read side of COPY text format (`COPY (query) TO STDOUT`): split the byte stream into rows, keep
 * each batch's bytes as they arrived, fingerprint a row from its line bytes, and decode fields only when
 * asked (the primary key of every row, whole rows only for the few that changed).
 *
 * The format (PostgreSQL's CopyAttributeOutText, text format, default options): one line per row ending
 * in `\n`; fields separated by a tab; NULL written `\N`; in a value, a backslash is doubled and the
 * control characters backspace, form feed, newline, carriage return, tab and vertical tab are written
 * `\b` `\f` `\n` `\r` `\t` `\v`; every other byte (other control characters included) is sent as it is.
 * So a raw tab always separates fields and a raw newline always ends a row. Each value is the text of
 * the column type's output function, the very text a text-format query result carries: decoding it with
 * the connection's parsers gives exactly what `stream` returns.
 *
 * The cursor path (used when statement_timeout must bound each fetch) reads the same text values
 * through FETCH and fingerprints the line COPY would have sent for them (`copyLine`), so a row read
 * either way has one fingerprint.
 */

type Parser = (text: string) => unknown;

/** A query's columns with the parsers that value them, and the row object pg would build for them. */
export class RowShape {
  readonly names: readonly string[];
  readonly parsers: readonly Parser[];
  /** Each column's name and type OID (RawText.columns). */
  readonly columns: readonly { readonly name: string; readonly type: number }[];
  /** Column name → index; with duplicate names, the last column (pg's row objects keep the last too). */
  readonly index: ReadonlyMap<string, number>;
  /** Every column set to null: copied per row, like pg's prebuilt result object (same key order). */
  readonly empty: Readonly<Record<string, unknown>>;

  constructor(fields: readonly Pick<pg.FieldDef, 'name' | 'dataTypeID'>[], types: pg.CustomTypesConfig) {
    this.names = fields.map((f) => f.name);
    this.columns = fields.map((f) => ({ name: f.name, type: f.dataTypeID }));
    this.parsers = fields.map((f) => types.getTypeParser(f.dataTypeID, 'text') as Parser);
    const index = new Map<string, number>();
    const empty = Object.create(null) as Record<string, unknown>;
    fields.forEach((f, i) => {
      index.set(f.name, i);
      empty[f.name] = null;
    });
    this.index = index;
    this.empty = { ...empty };
  }

  #asked: readonly string[] = [];
  #indexes = new Int32Array(0);

  /** The column index of each of `columns` (-1: no such column), remembered for the last names asked. */
  indexesOf(columns: readonly string[]): Int32Array {
    const asked = this.#asked;
    let same = columns.length === asked.length;
    for (let k = 0; same && k < columns.length; k++) same = columns[k] === asked[k];
    if (!same) {
      this.#indexes = Int32Array.from(columns, (name) => this.index.get(name) ?? -1);
      this.#asked = [...columns];
    }
    return this.#indexes;
  }
}

// --- escaping ---------------------------------------------------------------------------------

/** What COPY TO escapes: a backslash and \b \t \n \v \f \r (0x08–0x0d). */
const NEEDS_ESCAPE = /[\\\x08-\x0d]/;
const ESCAPES = /[\\\x08-\x0d]/g;
const ESCAPED: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\v': '\\v',
  '\f': '\\f',
  '\r': '\\r',
};

/** A value as COPY TO's text format writes it (CopyAttributeOutText with the tab delimiter). */
export function escapeCopyText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPES, (c) => ESCAPED[c]!) : value;
}

/** The COPY text line (without its newline) of a row's text values: escaped, `\N` for NULL, tab-joined. */
export function copyLine(values: readonly (string | null)[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) line += '\t';
    line += v === null || v === undefined ? '\\N' : escapeCopyText(v);
  }
  return line;
}

const isOctal = (c: number) => c >= 48 && c <= 55;
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Undoes COPY text escaping in one field (not `\N`, which the caller turns into null), as COPY FROM
 * reads it: `\b \f \n \r \t \v`, octal `\ooo` and hex `\xhh` byte values, and a backslash before any
 * other character standing for that character. Octal and hex escapes give bytes: when one is a byte
 * past ASCII the field is decoded as bytes, so multi-byte UTF-8 written that way reads back as text.
 */
export function unescapeCopyText(field: string): string {
  let out = '';
  let from = 0;
  let i = field.indexOf('\\');
  while (i !== -1) {
    out += field.slice(from, i);
    if (i + 1 >= field.length) {
      // A lone trailing backslash (COPY TO never writes one): keep it.
      out += '\\';
      from = i + 1;
      break;
    }
    const c = field.charCodeAt(i + 1);
    let next = i + 2;
    let byte = -1;
    switch (c) {
      case 98: // b
        out += '\b';
        break;
      case 102: // f
        out += '\f';
        break;
      case 110: // n
        out += '\n';
        break;
      case 114: // r
        out += '\r';
        break;
      case 116: // t
        out += '\t';
        break;
      case 118: // v
        out += '\v';
        break;
      case 120: {
        // x: up to two hex digits; without one it is a plain `x`
        const h1 = next < field.length ? hexValue(field.charCodeAt(next)) : -1;
        if (h1 === -1) {
          out += 'x';
          break;
        }
        byte = h1;
        next++;
        const h2 = next < field.length ? hexValue(field.charCodeAt(next)) : -1;
        if (h2 !== -1) {
          byte = (byte << 4) | h2;
          next++;
        }
        break;
      }
      default:
        if (isOctal(c)) {
          byte = c - 48;
          for (let n = 0; n < 2 && next < field.length && isOctal(field.charCodeAt(next)); n++, next++)
            byte = (byte << 3) | (field.charCodeAt(next) - 48);
          byte &= 0xff;
        } else {
          out += field[i + 1]!;
          // A surrogate pair escaped as a whole (never written by COPY TO): keep both halves.
          if (c >= 0xd800 && c <= 0xdbff && next < field.length) out += field[next++]!;
        }
    }
    if (byte >= 0x80) return unescapeCopyBytes(Buffer.from(field, 'utf8')).toString('utf8');
    if (byte >= 0) out += String.fromCharCode(byte);
    from = next;
    i = field.indexOf('\\', from);
  }
  return from === 0 ? field : out + field.slice(from);
}

/** `unescapeCopyText` on bytes (for octal and hex escapes of bytes past ASCII). */
function unescapeCopyBytes(src: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  let o = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b !== 92 || i + 1 >= src.length) {
      out[o++] = b;
      continue;
    }
    const c = src[++i]!;
    switch (c) {
      case 98:
        out[o++] = 8;
        break;
      case 102:
        out[o++] = 12;
        break;
      case 110:
        out[o++] = 10;
        break;
      case 114:
        out[o++] = 13;
        break;
      case 116:
        out[o++] = 9;
        break;
      case 118:
        out[o++] = 11;
        break;
      case 120: {
        const h1 = i + 1 < src.length ? hexValue(src[i + 1]!) : -1;
        if (h1 === -1) {
          out[o++] = c;
          break;
        }
        let v = h1;
        i++;
        const h2 = i + 1 < src.length ? hexValue(src[i + 1]!) : -1;
        if (h2 !== -1) {
          v = (v << 4) | h2;
          i++;
        }
        out[o++] = v;
        break;
      }
      default:
        if (isOctal(c)) {
          let v = c - 48;
          for (let n = 0; n < 2 && i + 1 < src.length && isOctal(src[i + 1]!); n++)
            v = (v << 3) | (src[++i]! - 48);
          out[o++] = v & 0xff;
        } else out[o++] = c;
    }
  }
  return out.subarray(0, o);
}

/** A COPY text field's value: `\N` is NULL, anything else is unescaped and parsed. */
function fieldValue(text: string, parser: Parser): unknown {
  if (text.length === 2 && text.charCodeAt(0) === 92 && text.charCodeAt(1) === 78) return null;
  return parser(text.indexOf('\\') === -1 ? text : unescapeCopyText(text));
}

/** RawText.format of rows read as COPY text (each value its type's output text). */
export const COPY_FORMAT = 'postgres-copy';

/** Whether `columns` is 0, 1, … count - 1: every column in its own order. */
function isEveryColumn(columns: Int32Array, count: number): boolean {
  if (columns.length !== count) return false;
  for (let k = 0; k < count; k++) if (columns[k] !== k) return false;
  return true;
}

let BOUNDS = new Int32Array(64);
/** A scratch array for the [start, end) of `count` fields (one line at a time, synchronously). */
function fieldBounds(count: number): Int32Array {
  if (BOUNDS.length < 2 * count) BOUNDS = new Int32Array(2 * count);
  return BOUNDS;
}

/** Up to this many ASCII bytes, `pick` builds a field's string in JS rather than with a native call. */
const SHORT_ASCII = 12;

function badLine(detail: string): Error {
  return new Error(`unexpected COPY text from the server: ${detail}`);
}

// --- batches ----------------------------------------------------------------------------------

/**
 * Rows as COPY sent them: `bytes` holds whole lines back to back, row `i` spanning
 * [ends[i-1] + 1, ends[i]) (the first from 0), its newline at ends[i].
 */
export class CopyTextRows implements RawRows, RawText {
  readonly format = COPY_FORMAT;

  constructor(
    private readonly shape: RowShape,
    private readonly bytes: Buffer,
    private readonly ends: Int32Array,
    readonly length: number,
  ) {}

  /** The rows' COPY text: this batch itself. */
  get text(): RawText {
    return this;
  }

  get columns(): RawText['columns'] {
    return this.shape.columns;
  }

  /** The line as COPY sent it when `columns` is every column in order; else its fields rearranged. */
  line(i: number, columns: Int32Array): Uint8Array {
    const start = this.start(i);
    const end = this.ends[i]!;
    const count = this.shape.names.length;
    if (isEveryColumn(columns, count)) return this.bytes.subarray(start, end + 1);
    const bytes = this.bytes;
    const bounds = fieldBounds(count);
    let p = start;
    for (let c = 0; c < count; c++) {
      const to = c === count - 1 ? end : bytes.indexOf(9, p);
      if (to === -1 || to > end || (c < count - 1 && to === end))
        throw badLine(`a row has fewer than ${count} fields`);
      bounds[2 * c] = p;
      bounds[2 * c + 1] = to;
      p = to + 1;
    }
    let size = 0;
    for (let k = 0; k < columns.length; k++)
      size += bounds[2 * columns[k]! + 1]! - bounds[2 * columns[k]!]! + 1;
    const out = Buffer.allocUnsafe(size);
    let o = 0;
    for (let k = 0; k < columns.length; k++) {
      const c = columns[k]!;
      o += bytes.copy(out, o, bounds[2 * c]!, bounds[2 * c + 1]!);
      out[o++] = k === columns.length - 1 ? 10 : 9;
    }
    return out;
  }

  private start(i: number): number {
    if (!(i >= 0 && i < this.length))
      throw new RangeError(`row ${i} is outside this batch of ${this.length}`);
    return i === 0 ? 0 : this.ends[i - 1]! + 1;
  }

  fingerprint(i: number): string {
    return fingerprint(this.bytes, this.start(i), this.ends[i]!);
  }

  pick(i: number, columns: readonly string[]): Row {
    const start = this.start(i);
    const end = this.ends[i]!;
    const { names, parsers } = this.shape;
    const indexes = this.shape.indexesOf(columns);
    const last = names.length - 1;
    const bytes = this.bytes;
    const out: Record<string, unknown> = {};
    for (let n = 0; n < columns.length; n++) {
      const c = indexes[n]!;
      if (c < 0) continue;
      // Skip to field c: past c tabs (the line has one between each two fields).
      let p = start;
      for (let k = 0; k < c; k++) {
        const tab = bytes.indexOf(9, p);
        if (tab === -1 || tab >= end) throw badLine(`a row has fewer than ${last + 1} fields`);
        p = tab + 1;
      }
      // Find the field's end, noting whether it holds a backslash (an escape) or a byte past ASCII.
      let q = p;
      let seen = 0;
      let escaped = false;
      for (let b = bytes[q]; q < end && b !== 9; b = bytes[++q]) {
        seen |= b!;
        if (b === 92) escaped = true;
      }
      if (c !== last && q >= end) throw badLine(`a row has fewer than ${last + 1} fields`);
      let value: unknown;
      if (escaped) {
        value =
          q - p === 2 && bytes[p + 1] === 78 ? null : fieldValue(bytes.toString('utf8', p, q), parsers[c]!);
      } else if (seen < 0x80 && q - p <= SHORT_ASCII) {
        // A short ASCII field (a numeric or short text key): building the string here beats a native call.
        let text = '';
        for (let k = p; k < q; k++) text += String.fromCharCode(bytes[k]!);
        value = parsers[c]!(text);
      } else value = parsers[c]!(bytes.toString(seen < 0x80 ? 'latin1' : 'utf8', p, q));
      setField(out, columns[n]!, value);
    }
    return out;
  }

  row(i: number): Row {
    const line = this.bytes.toString('utf8', this.start(i), this.ends[i]!);
    const { names, parsers } = this.shape;
    const row: Record<string, unknown> = { ...this.shape.empty };
    const last = names.length - 1;
    let from = 0;
    for (let c = 0; c <= last; c++) {
      let to = line.indexOf('\t', from);
      if (c === last) {
        if (to !== -1) throw badLine(`a row has more than ${last + 1} fields`);
        to = line.length;
      } else if (to === -1) throw badLine(`a row has fewer than ${last + 1} fields`);
      row[names[c]!] = fieldValue(line.slice(from, to), parsers[c]!);
      from = to + 1;
    }
    return row;
  }
}

/**
 * Rows as text values (a FETCH with every parser replaced by the identity, rowMode `array`). The
 * fingerprint hashes the COPY line of the values.
 */
export class TextValueRows implements RawRows, RawText {
  readonly format = COPY_FORMAT;

  constructor(
    private readonly shape: RowShape,
    private readonly rows: readonly (readonly (string | null)[])[],
  ) {}

  /** The rows as the COPY text their values make (what COPY would have sent). */
  get text(): RawText {
    return this;
  }

  get columns(): RawText['columns'] {
    return this.shape.columns;
  }

  line(i: number, columns: Int32Array): Uint8Array {
    const values = this.values(i);
    return Buffer.from(`${copyLine(Array.from(columns, (c) => values[c] ?? null))}\n`, 'utf8');
  }

  get length(): number {
    return this.rows.length;
  }

  private values(i: number): readonly (string | null)[] {
    const v = this.rows[i];
    if (!v) throw new RangeError(`row ${i} is outside this batch of ${this.rows.length}`);
    return v;
  }

  fingerprint(i: number): string {
    return fingerprintText(copyLine(this.values(i)));
  }

  pick(i: number, columns: readonly string[]): Row {
    const values = this.values(i);
    const { parsers } = this.shape;
    const indexes = this.shape.indexesOf(columns);
    const out: Record<string, unknown> = {};
    for (let n = 0; n < columns.length; n++) {
      const c = indexes[n]!;
      if (c < 0) continue;
      const v = values[c];
      setField(out, columns[n]!, v === null || v === undefined ? null : parsers[c]!(v));
    }
    return out;
  }

  row(i: number): Row {
    const values = this.values(i);
    const { names, parsers } = this.shape;
    const row: Record<string, unknown> = { ...this.shape.empty };
    for (let c = 0; c < names.length; c++) {
      const v = values[c];
      row[names[c]!] = v === null || v === undefined ? null : parsers[c]!(v);
    }
    return row;
  }
}

// --- splitting the stream ---------------------------------------------------------------------

/** Where a batch's lines end, and the bytes they are in (see CopyTextRows). */
export interface Lines {
  readonly bytes: Buffer;
  readonly ends: Int32Array;
  readonly count: number;
}

/**
 * Cuts COPY data into batches of `size` lines. Chunks arrive at arbitrary boundaries: the bytes of an
 * unfinished line (or batch) are kept until the rest arrives. A batch that lies within one chunk is a
 * view of it; one spanning chunks is copied into a buffer of its own.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #partsLength = 0;
  #ends: Int32Array;
  #count = 0;

  constructor(private readonly size: number) {
    this.#ends = new Int32Array(size);
  }

  /** Adds a chunk; returns the batches it completed (usually none or one). */
  push(chunk: Buffer): Lines[] {
    const done: Lines[] = [];
    let rest = chunk;
    let pos = 0;
    for (;;) {
      const nl = rest.indexOf(10, pos);
      if (nl === -1) break;
      this.#ends[this.#count++] = this.#partsLength + nl;
      pos = nl + 1;
      if (this.#count === this.size) {
        done.push(this.#take(rest.subarray(0, pos)));
        rest = rest.subarray(pos);
        pos = 0;
      }
    }
    if (rest.length > 0) {
      this.#parts.push(rest);
      this.#partsLength += rest.length;
    }
    return done;
  }

  /** The last, short batch at the end of the data (undefined when there is none). */
  end(): Lines | undefined {
    const lastEnd = this.#count === 0 ? -1 : this.#ends[this.#count - 1]!;
    if (this.#partsLength > lastEnd + 1) throw badLine('the data ended inside a row');
    return this.#count === 0 ? undefined : this.#take(undefined);
  }

  #take(tail: Buffer | undefined): Lines {
    const parts = tail ? [...this.#parts, tail] : this.#parts;
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const lines = { bytes, ends: this.#ends, count: this.#count };
    this.#parts = [];
    this.#partsLength = 0;
    this.#ends = new Int32Array(this.size);
    this.#count = 0;
    return lines;
  }
}
