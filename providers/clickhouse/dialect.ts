import { SqlDialect } from '../sql/dialect.js';

/**
 * ClickHouse: `` `x` `` identifiers, `?` placeholders, backslash escapes in literals and quoted
 * identifiers (every version, including 18.x, reads them; doubled quotes came later). Booleans
 * render as 1/0: versions before 21.12 have no boolean literal.
 */
class ClickhouseDialect extends SqlDialect {
  readonly name = 'clickhouse' as const;
  protected override readonly identQuote = ['`', '`'] as const;
  protected override readonly backslashEscapes = {
    '\\': '\\\\',
    "'": "\\'",
    '"': '\\"',
    '`': '\\`',
    '\0': '\\0',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
  };
  protected override readonly trueLiteral = '1';
  protected override readonly falseLiteral = '0';

  protected override escapeIdent(name: string): string {
    return this.escapeInQuote(name, "'");
  }
}

export const dialect: SqlDialect = new ClickhouseDialect();
