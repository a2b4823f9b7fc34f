/**
 * Rendering of a parsed segment template for one batch: each value escaped for the place the
 * parser recorded for it (template.ts), and never glued to text that would change how the
 * server reads it.
 */
import type { QuoteChar, SqlDialect } from '../../providers/sql/dialect.js';
import { valueText } from '../../providers/sql/dialect.js';
import { BugError } from '../errors.js';
import type { Template, TemplateNode, ValuePlace } from './template.js';

/** A profile as the queue holds it: field name → value. */
export type Profile = Readonly<Record<string, unknown>>;

export interface RenderRequest {
  readonly template: Template;
  /** Must be the dialect the template was parsed for. */
  readonly dialect: SqlDialect;
  readonly segment: { readonly id: number; readonly name: string };
  readonly batch: readonly Profile[];
}

/**
 * Renders a template for one batch. Outside quotes a value is a complete literal (`literal()`);
 * inside a quote it is escaped for that quote (a missing value is empty text there).
 * `{batch_in}` of an empty batch renders `NULL`, so `IN (NULL)` matches nothing.
 */
export function renderTemplate(req: RenderRequest): string {
  const { template, dialect, segment, batch } = req;
  if (dialect.name !== template.dialect) {
    throw new BugError(`template parsed for ${template.dialect} rendered with the ${dialect.name} dialect`);
  }
  const out = new Output();
  const inQuote = inQuoteEscaper(dialect);
  const value = (v: unknown, place: ValuePlace): void => {
    if (place === 'outside') out.literal(dialect.literal(v));
    else if (place === 'digits') {
      if (!Number.isSafeInteger(v))
        throw new BugError(`expected an integer for a digits-only tag, got ${String(v)}`);
      out.push(String(v));
    } else out.push(inQuote(typeof v === 'string' ? v : (valueText(v) ?? ''), place));
  };
  const emit = (
    nodes: readonly TemplateNode[],
    lead: Profile | undefined,
    index: number,
    lastIndex: boolean,
  ): void => {
    for (const n of nodes) {
      switch (n.kind) {
        case 'text':
          out.push(n.text);
          break;
        case 'segment_id':
          value(segment.id, n.place);
          break;
        case 'segment_name':
          value(segment.name, n.place);
          break;
        case 'index':
          value(index, n.place);
          break;
        case 'field':
          value(lead && Object.hasOwn(lead, n.field) ? lead[n.field] : undefined, n.place);
          break;
        case 'autocomma':
          if (!lastIndex) out.push(',');
          break;
        case 'batch_in':
          out.literal(
            batch.length === 0
              ? 'NULL'
              : batch
                  .map((p) => dialect.literal(Object.hasOwn(p, n.field) ? p[n.field] : undefined))
                  .join(', '),
          );
          break;
        case 'loop':
          for (let i = 0; i < batch.length; i++) emit(n.body, batch[i], i, i === batch.length - 1);
          break;
        default: {
          const never: never = n;
          throw new BugError(`unknown template node ${JSON.stringify(never)}`);
        }
      }
    }
  };
  emit(template.nodes, undefined, 0, true);
  return out.text();
}

type Escape = (value: string, quote: QuoteChar) => string;
const escapers = new WeakMap<SqlDialect, Escape>();

/**
 * `dialect.escapeInQuote`, with a shortcut for text the dialect leaves as it is (most keys and
 * names: letters, digits, `-`, `_`, `@`, `.`, …): returned unchanged without running the
 * dialect's escaping. Every dialect escapes character by character (a quote doubled, a
 * backslash sequence), so text made only of characters that each escape to themselves escapes
 * to itself; which ASCII characters those are is asked of the dialect once, per quote.
 */
function inQuoteEscaper(dialect: SqlDialect): Escape {
  let escaper = escapers.get(dialect);
  if (escaper) return escaper;
  const kept = (quote: QuoteChar): Uint8Array => {
    const table = new Uint8Array(128);
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      try {
        table[c] = dialect.escapeInQuote(ch, quote) === ch ? 1 : 0;
      } catch {
        table[c] = 0; // refused (a NUL where the server cannot take one): the dialect must see it
      }
    }
    return table;
  };
  const single = kept("'");
  const double = kept('"');
  escaper = (value, quote) => {
    const table = quote === "'" ? single : double;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 128 || table[c] === 0) return dialect.escapeInQuote(value, quote);
    }
    return value;
  };
  escapers.set(dialect, escaper);
  return escaper;
}

const QUOTE = 1;
/** Characters a literal must not follow without a space (`[A-Za-z0-9_$'"`\]]`). */
const WORD_END = 2;
/** Characters a literal can start with that would glue to a WORD_END (`[A-Za-z_'"]`). */
const GLUE_START = 4;
const CHAR_CLASS = (() => {
  const t = new Uint8Array(128);
  for (let c = 0; c < 128; c++) {
    const ch = String.fromCharCode(c);
    if (/['"`]/.test(ch)) t[c]! |= QUOTE;
    if (/[A-Za-z0-9_$'"`\]]/.test(ch)) t[c]! |= WORD_END;
    if (/[A-Za-z_'"]/.test(ch)) t[c]! |= GLUE_START;
  }
  return t;
})();
const is = (code: number, cls: number): boolean => code < 128 && (CHAR_CLASS[code]! & cls) !== 0;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;

/** Rendered text, keeping the last character so a literal is never glued to its neighbours. */
class Output {
  private out = '';
  /** The last character's code (NaN before any). */
  private last = Number.NaN;
  private afterLiteral = false;

  push(s: string): void {
    if (s === '') return;
    // `'a'` then the template's own `'…'` would read as one literal with a doubled quote.
    const first = s.charCodeAt(0);
    if (this.afterLiteral && this.last === first && is(first, QUOTE)) this.out += ' ';
    this.out += s;
    this.last = s.charCodeAt(s.length - 1);
    this.afterLiteral = false;
  }

  /**
   * Appends a literal standing outside quotes. A space goes in front where gluing would change
   * how the server reads it: `E'…'` (a PostgreSQL escape string), `x'…'`, `''…'` (a doubled
   * quote), or `-` then `-5` (a `--` comment).
   */
  literal(s: string): void {
    const first = s.charCodeAt(0);
    const glue =
      (is(this.last, WORD_END) && is(first, GLUE_START)) ||
      (this.last === DASH && first === DASH) ||
      (this.last === SLASH && first === STAR);
    if (glue) this.push(' ');
    this.push(s);
    this.afterLiteral = true;
  }

  text(): string {
    return this.out;
  }
}
