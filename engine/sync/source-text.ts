import type { RawRows, RawText } from '../../providers/sdk.js';
import type { FieldMapper } from './fields.js';

/**
 * Records that can travel as the source's own text. When every field of a mapping reads a model
 * column as it is (`email: email`), a changed raw row needs no decoding on its way out: a destination
 * that loads the source's text format (PostgreSQL COPY text into PostgreSQL) asks the record for its
 * fields as one line of that text (LoadRecord.sourceText) and sends it unchanged. The record decodes
 * and maps its row only if something reads `fields` (another destination, a failure's payload).
 */
export class SourceTextMapping {
  readonly #columnOf: ReadonlyMap<string, string>;
  /** The fields every mapped row has, in order. */
  readonly fieldNames: readonly string[];
  /** For the last `RawText.columns` seen: does it hold every column the mapping reads? */
  #covered: { columns: RawText['columns']; yes: boolean } | undefined;
  /** For the last (columns, fields, types) a destination asked: the column index of each field. */
  #asked:
    | {
        columns: RawText['columns'];
        fields: readonly string[];
        types: readonly number[];
        indexes: Int32Array | null;
      }
    | undefined;

  private constructor(
    columnOf: ReadonlyMap<string, string>,
    readonly mapper: FieldMapper,
  ) {
    this.#columnOf = columnOf;
    this.fieldNames = [...columnOf.keys()];
  }

  /** For a mapping whose fields all read plain columns; undefined for any other. */
  static of(mapper: FieldMapper): SourceTextMapping | undefined {
    const plain = mapper.plainColumns();
    return plain ? new SourceTextMapping(plain, mapper) : undefined;
  }

  /**
   * Whether `rows` carry a text with every column the mapping reads, under that exact name (the name
   * the mapper reads first), so that mapping one of its rows cannot fail.
   */
  covers(rows: RawRows): rows is RawRows & { readonly text: RawText } {
    const text = rows.text;
    if (!text) return false;
    if (this.#covered?.columns !== text.columns) {
      const names = new Set(text.columns.map((c) => c.name));
      this.#covered = { columns: text.columns, yes: [...this.#columnOf.values()].every((c) => names.has(c)) };
    }
    return this.#covered.yes;
  }

  /** Row `i`'s `fields` as one line of `format`, or undefined when some field cannot go as text. */
  line(
    text: RawText,
    i: number,
    format: string,
    fields: readonly string[],
    types: readonly number[],
  ): Uint8Array | undefined {
    if (text.format !== format) return undefined;
    const a = this.#asked;
    const indexes =
      a && a.columns === text.columns && a.fields === fields && a.types === types
        ? a.indexes
        : this.#resolve(text.columns, fields, types);
    return indexes ? text.line(i, indexes) : undefined;
  }

  #resolve(
    columns: RawText['columns'],
    fields: readonly string[],
    types: readonly number[],
  ): Int32Array | null {
    let indexes: Int32Array | null = new Int32Array(fields.length);
    for (let k = 0; k < fields.length && indexes; k++) {
      const name = this.#columnOf.get(fields[k]!);
      // The last column of that name: the one a decoded row holds (later columns overwrite earlier ones).
      const c = name === undefined ? -1 : columns.findLastIndex((col) => col.name === name);
      if (c < 0 || types[k]! < 0 || columns[c]!.type !== types[k]) indexes = null;
      else indexes[k] = c;
    }
    this.#asked = { columns, fields, types, indexes };
    return indexes;
  }
}

/** A changed raw row bound for a destination: its text, and its mapped fields on demand. */
export class RawRecordRow {
  constructor(
    readonly rows: RawRows & { readonly text: RawText },
    readonly index: number,
    readonly via: SourceTextMapping,
  ) {}

  /** The mapped fields (the row is decoded now). */
  fields(): Record<string, unknown> {
    const mapped = this.via.mapper.map(this.rows.row(this.index));
    // covers() checked every column is there: a plain-column mapping of such a row cannot fail.
    if (!mapped.ok) throw new Error(`internal: mapping a covered row failed (${mapped.message})`);
    return mapped.fields;
  }

  sourceText(format: string, fields: readonly string[], types: readonly number[]): Uint8Array | undefined {
    return this.via.line(this.rows.text, this.index, format, fields, types);
  }
}
