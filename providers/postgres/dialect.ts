import { numberedPlaceholder, SqlDialect } from '../sql/dialect.js';

/**
 * PostgreSQL: `"x"` identifiers, `$1` placeholders, quotes doubled inside literals. Assumes
 * `standard_conforming_strings = on` (the default since 9.1): a backslash in `'…'` is ordinary.
 * Text cannot hold U+0000, so a value with a NUL is refused before it reaches the server.
 */
class PostgresDialect extends SqlDialect {
  readonly name = 'postgres' as const;
  protected override readonly rejectsNul = true;

  override placeholder(index: number): string {
    return numberedPlaceholder('$', index);
  }
}

export const dialect: SqlDialect = new PostgresDialect();
