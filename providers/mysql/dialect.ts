import { SqlDialect } from '../sql/dialect.js';

/**
 * MySQL / MariaDB: `` `x` `` identifiers, `?` placeholders, backslash escapes inside literals
 * (the set `mysql_real_escape_string` uses). Assumes the default sql_mode: neither
 * NO_BACKSLASH_ESCAPES nor ANSI_QUOTES, so `"…"` is a string literal too.
 */
class MysqlDialect extends SqlDialect {
  readonly name = 'mysql' as const;
  protected override readonly identQuote = ['`', '`'] as const;
  protected override readonly backslashEscapes = {
    '\\': '\\\\',
    "'": "\\'",
    '"': '\\"',
    '\0': '\\0',
    '\n': '\\n',
    '\r': '\\r',
    '\x1a': '\\Z',
  };
}

export const dialect: SqlDialect = new MysqlDialect();
