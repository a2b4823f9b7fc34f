// The exact SQL the mssql destination sends for each action, and how values become parameters.
// No SQL Server runs here: these pin the text; test/integration/provider-env-databases.test.ts runs
// it when BACKFLOW_TEST_MSSQL_URL gives a server.

import { describe, expect, it } from 'vitest';
import {
  parseMssqlSettings,
  redact,
  serverError,
  toProviderError,
} from '../../providers/mssql/connection.js';
import {
  buildStatement,
  columnOf,
  deleteStatement,
  insertStatement,
  type MssqlBatch,
  type MssqlColumn,
  paramValue,
  updateStatement,
  upsertStatement,
} from '../../providers/mssql/destination.js';
import { DESCRIBE_SQL, trimStatement } from '../../providers/mssql/source.js';
import { ProviderError, UserError } from '../../providers/sdk.js';

const col = (name: string, type: string, extra: Record<string, unknown> = {}): MssqlColumn =>
  columnOf({ name, type, max_length: 0, precision: 0, scale: 0, is_computed: false, ...extra });

const id = col('id', 'bigint');
const email = col('email', 'nvarchar', { max_length: 200 });
const score = col('score', 'decimal', { precision: 18, scale: 4 });
const seen = col('seen', 'datetime2', { scale: 7 });

const batch: MssqlBatch = {
  table: 'dbo.crm',
  key: 'id',
  columns: [id, email, score],
  rows: [
    [1, 'a@x', 1.5],
    ['2', "O'Reilly", null],
  ],
};

describe('mssql statements', () => {
  it('upserts with one MERGE … WITH (HOLDLOCK) over a VALUES list, casting to the column types', () => {
    expect(upsertStatement(batch)).toEqual({
      sql:
        'MERGE INTO [dbo].[crm] WITH (HOLDLOCK) AS [t]' +
        ' USING (VALUES (CAST(@p1 AS bigint), @p2, CAST(@p3 AS decimal(18, 4))), (CAST(@p4 AS bigint), @p5, CAST(@p6 AS decimal(18, 4))))' +
        ' AS [s] ([id], [email], [score])' +
        ' ON [t].[id] = [s].[id]' +
        ' WHEN MATCHED THEN UPDATE SET [t].[email] = [s].[email], [t].[score] = [s].[score]' +
        ' WHEN NOT MATCHED BY TARGET THEN INSERT ([id], [email], [score]) VALUES ([s].[id], [s].[email], [s].[score]);',
      params: [1, 'a@x', 1.5, '2', "O'Reilly", null],
    });
  });

  it('upserts the key alone without an UPDATE clause', () => {
    expect(upsertStatement({ ...batch, columns: [id], rows: [[1]] }).sql).toBe(
      'MERGE INTO [dbo].[crm] WITH (HOLDLOCK) AS [t] USING (VALUES (CAST(@p1 AS bigint))) AS [s] ([id])' +
        ' ON [t].[id] = [s].[id] WHEN NOT MATCHED BY TARGET THEN INSERT ([id]) VALUES ([s].[id]);',
    );
  });

  it('inserts with a VALUES list', () => {
    expect(insertStatement(batch)).toEqual({
      sql:
        'INSERT INTO [dbo].[crm] ([id], [email], [score]) VALUES' +
        ' (CAST(@p1 AS bigint), @p2, CAST(@p3 AS decimal(18, 4))), (CAST(@p4 AS bigint), @p5, CAST(@p6 AS decimal(18, 4)));',
      params: [1, 'a@x', 1.5, '2', "O'Reilly", null],
    });
  });

  it('updates by joining a VALUES list on the key, never setting the key', () => {
    expect(updateStatement(batch)).toEqual({
      sql:
        'UPDATE [t] SET [t].[email] = [s].[email], [t].[score] = [s].[score]' +
        ' FROM [dbo].[crm] AS [t] INNER JOIN (VALUES (CAST(@p1 AS bigint), @p2, CAST(@p3 AS decimal(18, 4))),' +
        ' (CAST(@p4 AS bigint), @p5, CAST(@p6 AS decimal(18, 4)))) AS [s] ([id], [email], [score]) ON [t].[id] = [s].[id];',
      params: [1, 'a@x', 1.5, '2', "O'Reilly", null],
    });
    expect(updateStatement({ ...batch, columns: [id], rows: [[1]] })).toBeNull();
  });

  it('deletes by an IN list of keys', () => {
    expect(deleteStatement({ table: 'crm', key: 'id', columns: [id], rows: [[1], ['2']] })).toEqual({
      sql: 'DELETE FROM [crm] WHERE [id] IN (CAST(@p1 AS bigint), CAST(@p2 AS bigint));',
      params: [1, '2'],
    });
    const textKey = col('k', 'nvarchar', { max_length: -1 });
    expect(deleteStatement({ table: 'crm', key: 'k', columns: [textKey], rows: [['a']] }).sql).toBe(
      'DELETE FROM [crm] WHERE [k] IN (@p1);',
    );
  });

  it('mirror is the delete plus the MERGE (dispatch by operation)', () => {
    expect(buildStatement('upsert', batch)).toEqual(upsertStatement(batch));
    expect(buildStatement('delete', { ...batch, columns: [id], rows: [[3]] })?.sql).toBe(
      'DELETE FROM [dbo].[crm] WHERE [id] IN (CAST(@p1 AS bigint));',
    );
  });

  it('quotes every part of awkward names, closing brackets doubled', () => {
    const odd = col('Value]; DROP TABLE x;--', 'nvarchar', { max_length: -1 });
    const key = col('Key Col', 'int');
    const s = upsertStatement({
      table: 'odd schema].[t',
      key: 'Key Col',
      columns: [key, odd],
      rows: [[1, 'v']],
    });
    expect(s.sql).toBe(
      'MERGE INTO [odd schema]]].[[t] WITH (HOLDLOCK) AS [t] USING (VALUES (CAST(@p1 AS int), @p2))' +
        ' AS [s] ([Key Col], [Value]]; DROP TABLE x;--])' +
        ' ON [t].[Key Col] = [s].[Key Col]' +
        ' WHEN MATCHED THEN UPDATE SET [t].[Value]]; DROP TABLE x;--] = [s].[Value]]; DROP TABLE x;--]' +
        ' WHEN NOT MATCHED BY TARGET THEN INSERT ([Key Col], [Value]]; DROP TABLE x;--]) VALUES ([s].[Key Col], [s].[Value]]; DROP TABLE x;--]);',
    );
  });

  it('never puts a value in the SQL text', () => {
    const hostile = "'; DROP TABLE crm; --";
    const s = upsertStatement({ ...batch, rows: [[1, hostile, null]] });
    expect(s.sql).not.toContain('DROP');
    expect(s.params).toContain(hostile);
  });

  it('casts each column to its declared type; character columns are not cast (a cast would truncate)', () => {
    expect(col('a', 'nvarchar', { max_length: 20 }).cast).toBeNull();
    expect(col('a', 'varbinary', { max_length: 16 }).cast).toBe('varbinary(max)');
    expect(col('a', 'numeric', { precision: 38, scale: 0 }).cast).toBe('numeric(38, 0)');
    expect(col('a', 'datetimeoffset', { scale: 3 }).cast).toBe('datetimeoffset(3)');
    expect(col('a', 'uniqueidentifier').cast).toBe('uniqueidentifier');
    expect(seen.cast).toBe('datetime2(7)');
  });
});

describe('mssql parameter values', () => {
  it('converts values for the column', () => {
    expect(paramValue({ a: [1, 2n] }, email)).toBe('{"a":[1,"2"]}');
    expect(paramValue(true, email)).toBe('true');
    expect(paramValue(true, col('b', 'bit'))).toBe(true);
    expect(paramValue(Number.NaN, score)).toBeNull();
    expect(paramValue(9007199254740993n, id)).toBe(9007199254740993n);
    expect(paramValue(2n ** 70n, col('n', 'decimal', { precision: 38 }))).toBe('1180591620717411303424');
    expect(paramValue(new Date('2024-01-02T03:04:05.123Z'), seen)).toBe('2024-01-02T03:04:05.123');
    expect(paramValue('2024-01-02T05:04:05+02:00', seen)).toBe('2024-01-02T03:04:05.000');
    expect(paramValue('2024-01-02T03:04:05Z', col('o', 'datetimeoffset', { scale: 7 }))).toBe(
      '2024-01-02T03:04:05.000Z',
    );
    expect(paramValue(new Uint8Array([1, 2]), col('b', 'varbinary'))).toEqual(Buffer.from([1, 2]));
  });
});

describe('mssql connection settings and errors', () => {
  it('parses the url', () => {
    expect(
      parseMssqlSettings(
        {
          type: 'mssql',
          url: 'mssql://sa:p%40ss@db.example.com:1444/crm?encrypt=false&trustServerCertificate=true',
        },
        'connector.crm',
      ),
    ).toEqual({
      server: 'db.example.com',
      port: 1444,
      database: 'crm',
      user: 'sa',
      password: 'p@ss',
      encrypt: false,
      trustServerCertificate: true,
      where: 'db.example.com:1444/crm',
    });
    expect(parseMssqlSettings({ type: 'mssql', url: 'sqlserver://u@h' }, 'a')).toMatchObject({
      port: 1433,
      database: 'master',
      encrypt: true,
    });
    expect(() => parseMssqlSettings({ type: 'mssql', url: 'mssql://h?encrypt=maybe' }, 'a')).toThrow(
      UserError,
    );
    expect(() => parseMssqlSettings({ type: 'mssql', url: 'postgres://h' }, 'a')).toThrow(/mssql:\/\//);
  });

  it('describes and trims model SQL', () => {
    expect(DESCRIBE_SQL).toBe('EXEC sp_describe_first_result_set @tsql = @p1');
    expect(trimStatement('SELECT 1;\n ')).toBe('SELECT 1');
  });

  it('finds the cause behind "The statement has been terminated."', () => {
    const last = Object.assign(new Error('The statement has been terminated.'), {
      number: 3621,
      precedingErrors: [
        Object.assign(new Error("Violation of PRIMARY KEY constraint 'PK_crm'."), { number: 2627 }),
      ],
    });
    expect(serverError(last)).toEqual({
      number: 2627,
      message: "Violation of PRIMARY KEY constraint 'PK_crm'.",
    });
  });

  it('maps driver errors to codes with the address and without the password', () => {
    const s = parseMssqlSettings({ type: 'mssql', url: 'mssql://sa:hunter22@db:1433/crm' }, 'a');
    const login = toProviderError(
      Object.assign(new Error("Login failed for user 'sa'."), { code: 'ELOGIN' }),
      s,
      'connect',
    );
    expect(login).toBeInstanceOf(ProviderError);
    expect(login.code).toBe('auth_failed');
    expect(login.message).toContain('db:1433/crm');
    const refused = toProviderError(
      Object.assign(new Error('Failed to connect to db:1433 - connect ECONNREFUSED'), { code: 'ESOCKET' }),
      s,
      'connect',
    );
    expect(refused.code).toBe('connection_failed');
    expect(refused.hint).toContain('db:1433');
    const timeout = toProviderError(
      Object.assign(new Error('Timeout: Request failed to complete in 1000ms'), { code: 'ETIMEOUT' }),
      s,
      'query',
    );
    expect(timeout.code).toBe('statement_timeout');
    const query = toProviderError(
      Object.assign(new Error("Invalid object name 'nope'."), { number: 208 }),
      s,
      'query',
    );
    expect(query.code).toBe('query_failed');
    expect(redact('mssql://sa:hunter22@db hunter22', s)).toBe('mssql://***@db ***');
  });
});
