import { numberedPlaceholder, SqlDialect } from '../sql/dialect.js';

/**
 * Oracle limits a string literal to 4000 bytes (ORA-01704). Each chunk's escaped text is
 * bounded with a worst-case byte count that holds for every database character set:
 * ASCII 1, up to U+07FF 2, anything else 3 per UTF-16 unit (a surrogate pair: 6, as in
 * Oracle's CESU-8 `UTF8`), a doubled quote 2.
 */
const MAX_LITERAL_BYTES = 4000;

/**
 * Oracle: `"x"` identifiers, `:1` placeholders, quotes doubled, booleans as 1/0 (no SQL
 * boolean before 23ai). A string too long for one literal renders outside quotes as
 * `(TO_CLOB('…') || TO_CLOB('…'))`, every chunk within the limit; a value placed inside a
 * template's own `'…'` cannot be split that way, so a long one there fails with ORA-01704.
 */
class OracleDialect extends SqlDialect {
  readonly name = 'oracle' as const;
  protected override readonly trueLiteral = '1';
  protected override readonly falseLiteral = '0';

  override placeholder(index: number): string {
    return numberedPlaceholder(':', index);
  }

  protected override stringLiteral(text: string): string {
    const chunks = splitForLiterals(text);
    if (chunks.length <= 1) return super.stringLiteral(text);
    return `(${chunks.map((c) => `TO_CLOB(${super.stringLiteral(c)})`).join(' || ')})`;
  }
}

/** Splits text into pieces whose escaped literal fits MAX_LITERAL_BYTES, never inside a surrogate pair. */
function splitForLiterals(text: string): string[] {
  const chunks: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const pair = code >= 0xd800 && code <= 0xdbff && i + 1 < text.length;
    const cost = code === 0x27 ? 2 : code < 0x80 ? 1 : code < 0x800 ? 2 : pair ? 6 : 3;
    if (bytes + cost > MAX_LITERAL_BYTES) {
      chunks.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += cost;
    if (pair) i++;
  }
  chunks.push(text.slice(start));
  return chunks;
}

export const dialect: SqlDialect = new OracleDialect();
