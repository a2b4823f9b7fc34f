import { numberedPlaceholder, SqlDialect } from '../sql/dialect.js';

/** SQL Server: `[x]` identifiers, `@p1` placeholders, `N'…'` Unicode literals, quotes doubled, bits as 1/0. */
class MssqlDialect extends SqlDialect {
  readonly name = 'mssql' as const;
  protected override readonly identQuote = ['[', ']'] as const;
  protected override readonly stringPrefix = 'N';
  protected override readonly trueLiteral = '1';
  protected override readonly falseLiteral = '0';

  override placeholder(index: number): string {
    return numberedPlaceholder('@p', index);
  }
}

export const dialect: SqlDialect = new MssqlDialect();
