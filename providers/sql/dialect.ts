/**
 * How SQL text is written for one database: identifier quoting, placeholders, literals and
 * escaping inside quotes. The base does the work; each `providers/<db>/dialect.ts` overrides a
 * few fields (kysely style). Pinned by test/unit/dialect-escaping.test.ts and, for the
 * servers we can start, by round trips against the real database.
 */
import type { DialectName } from '../sdk.js';
import { UserError } from '../sdk.js';

/** The quote a value stands inside: a `'…'` or a `"…"` literal. */
export type QuoteChar = "'" | '"';

/** Backslash-escape table: character → its escape sequence (inside either quote kind). */
export type EscapeTable = Readonly<Record<string, string>>;

/** The SQL-writing rules of one dialect. */
export abstract class SqlDialect {
  /** The dialect's name, as in provider manifests and templates. */
  abstract readonly name: DialectName;

  /** Opening and closing identifier quote. */
  protected readonly identQuote: readonly [open: string, close: string] = ['"', '"'];
  /**
   * Backslash escapes inside string literals (MySQL, ClickHouse, BigQuery). Absent: the dialect
   * escapes a quote by doubling it and a backslash is an ordinary character.
   */
  protected readonly backslashEscapes: EscapeTable | undefined = undefined;
  /** Prefix of a string literal outside quotes (`N` for MSSQL's Unicode literals). */
  protected readonly stringPrefix: string = '';
  /** The server cannot take U+0000 in SQL text or in a text value (PostgreSQL, SQLite). */
  protected readonly rejectsNul: boolean = false;
  protected readonly trueLiteral: string = 'TRUE';
  protected readonly falseLiteral: string = 'FALSE';

  /** One identifier, quoted: `"x"`, `` `x` `` or `[x]`, with the closing quote escaped. */
  quoteIdent(name: string): string {
    if (name === '') throw new UserError('an identifier cannot be empty');
    const [open, close] = this.identQuote;
    return `${open}${this.escapeIdent(name, close)}${close}`;
  }

  /** Escapes an identifier's text for its closing quote (doubled by default). */
  protected escapeIdent(name: string, close: string): string {
    return name.replaceAll(close, close + close);
  }

  /** `schema.table` (any number of dotted parts), each part quoted. */
  quoteTable(name: string): string {
    return name
      .split('.')
      .map((part) => this.quoteIdent(part))
      .join('.');
  }

  /** The bind placeholder for the 1-based parameter `index` (`?` unless overridden). */
  placeholder(index: number): string {
    checkIndex(index);
    return '?';
  }

  /**
   * A complete SQL literal for a value standing outside quotes: strings quoted and escaped,
   * finite numbers and bigints as digits, booleans in the dialect's form, null/undefined/NaN/±Infinity
   * as NULL, a Date as its ISO-8601 text, an object or array as its JSON text.
   */
  literal(value: unknown): string {
    if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'NULL';
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'boolean') return value ? this.trueLiteral : this.falseLiteral;
    const text = valueText(value);
    return text === null ? 'NULL' : this.stringLiteral(text);
  }

  /** A quoted string literal holding exactly `text`. */
  protected stringLiteral(text: string): string {
    return `${this.stringPrefix}'${this.escapeInQuote(text, "'")}'`;
  }

  /**
   * The text to put inside an existing `'…'` or `"…"` literal so that it holds exactly `value`
   * and cannot end the literal: the quote doubled, or backslash escapes where the dialect uses them.
   */
  escapeInQuote(value: string, quote: QuoteChar): string {
    if (this.rejectsNul && value.includes('\0')) {
      throw new UserError(
        `a value contains a NUL character (U+0000), which ${this.name} cannot take in SQL text`,
        {
          hint: 'remove NUL characters from the value before it reaches this connector',
        },
      );
    }
    const table = this.backslashEscapes;
    if (table === undefined) return value.replaceAll(quote, quote + quote);
    return value.replace(escapePattern(table), (c) => table[c] ?? c);
  }
}

/**
 * A value's text as it should appear inside a literal, or null for a missing value
 * (null, undefined, NaN, ±Infinity, an invalid Date).
 */
export function valueText(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? String(value) : null;
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return null;
    case 'object':
      if (value === null) return null;
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    default:
      return String(value);
  }
}

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 1)
    throw new RangeError(`placeholder index must be ≥ 1, got ${index}`);
}

/** A placeholder numbered with a prefix: `$1`, `@p1`, `:1`. */
export function numberedPlaceholder(prefix: string, index: number): string {
  checkIndex(index);
  return `${prefix}${index}`;
}

const patterns = new WeakMap<EscapeTable, RegExp>();

/** One regular expression matching every character the table escapes (cached per table). */
function escapePattern(table: EscapeTable): RegExp {
  let re = patterns.get(table);
  if (re === undefined) {
    const chars = Object.keys(table).map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    re = new RegExp(`[${chars.join('')}]`, 'g');
    patterns.set(table, re);
  }
  return re;
}
