import { type EscapeTable, numberedPlaceholder, SqlDialect } from '../sql/dialect.js';

/** Every C0 control character (and DEL) as `\xHH`, with the usual short forms where they exist. */
function controlEscapes(): Record<string, string> {
  const table: Record<string, string> = {};
  for (let c = 0; c < 0x20; c++) table[String.fromCharCode(c)] = `\\x${c.toString(16).padStart(2, '0')}`;
  table['\x7f'] = '\\x7f';
  return Object.assign(table, { '\n': '\\n', '\r': '\\r', '\t': '\\t' });
}

/**
 * BigQuery (GoogleSQL): `` `x` `` identifiers and `@p1` named parameters. Quoted strings and
 * quoted identifiers take backslash escapes and cannot hold a raw newline, so control
 * characters become escape sequences; a doubled quote is not an escape in GoogleSQL.
 */
class BigqueryDialect extends SqlDialect {
  readonly name = 'bigquery' as const;
  protected override readonly identQuote = ['`', '`'] as const;
  protected override readonly backslashEscapes: EscapeTable = {
    ...controlEscapes(),
    '\\': '\\\\',
    "'": "\\'",
    '"': '\\"',
    '`': '\\`',
  };

  protected override escapeIdent(name: string): string {
    return this.escapeInQuote(name, "'");
  }

  override placeholder(index: number): string {
    return numberedPlaceholder('@p', index);
  }
}

export const dialect: SqlDialect = new BigqueryDialect();
