import { SqlDialect } from '../sql/dialect.js';

/**
 * SQLite: `"x"` identifiers, `?` placeholders, quotes doubled inside literals. SQL text ends
 * at a NUL byte, so a value with a NUL is refused rather than silently truncating the statement.
 */
class SqliteDialect extends SqlDialect {
  readonly name = 'sqlite' as const;
  protected override readonly rejectsNul = true;
}

export const dialect: SqlDialect = new SqliteDialect();
