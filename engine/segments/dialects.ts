import { dialect as bigquery } from '../../providers/bigquery/dialect.js';
import { dialect as clickhouse } from '../../providers/clickhouse/dialect.js';
import { dialect as mssql } from '../../providers/mssql/dialect.js';
import { dialect as mysql } from '../../providers/mysql/dialect.js';
import { dialect as oracle } from '../../providers/oracle/dialect.js';
import { dialect as postgres } from '../../providers/postgres/dialect.js';
import type { DialectName } from '../../providers/sdk.js';
import type { SqlDialect } from '../../providers/sql/dialect.js';
import { dialect as sqlite } from '../../providers/sqlite/dialect.js';

/** The SQL dialect a connector's templates are parsed and rendered with (the modules are tiny: no drivers). */
export const dialects: Readonly<Record<DialectName, SqlDialect>> = {
  sqlite,
  postgres,
  mysql,
  mssql,
  oracle,
  bigquery,
  clickhouse,
};
