// The exact SQL the oracle destination sends for each action (single-row statements run with
// executeMany), the bind types, the connector's statement splitting and the error mapping. No Oracle
// runs here: test/integration/provider-env-databases.test.ts runs it when BACKFLOW_TEST_ORACLE_URL is set.

import { describe, expect, it } from 'vitest';
import {
  errorCode,
  parseOracleSettings,
  redact,
  SESSION_SQL,
  splitStatements,
  toProviderError,
} from '../../providers/oracle/connection.js';
import {
  bindFor,
  buildStatement,
  type OracleBatch,
  type OracleColumn,
} from '../../providers/oracle/destination.js';
import { describeSql } from '../../providers/oracle/source.js';
import { UserError } from '../../providers/sdk.js';
import { HOSTILE, HOSTILE_NAMES } from '../fixtures/hostile-values.js';

const c = (name: string, type: string): OracleColumn => ({ name, type, virtual: false });
const ID = c('ID', 'NUMBER');
const EMAIL = c('EMAIL', 'VARCHAR2');
const SEEN = c('SEEN', 'TIMESTAMP(6)');

const batch: OracleBatch = {
  table: '"CRM"',
  key: 'ID',
  columns: [ID, EMAIL, SEEN],
  rows: [
    [1, 'a@x', '2024-01-02T03:04:05Z'],
    [2, "O'Reilly", null],
  ],
};

describe('oracle statements', () => {
  it('upserts with a MERGE from DUAL, one bind row per record', () => {
    expect(buildStatement('upsert', batch)).toEqual({
      sql:
        'MERGE INTO "CRM" t USING (SELECT :1 AS "ID", :2 AS "EMAIL", :3 AS "SEEN" FROM DUAL) s' +
        ' ON (t."ID" = s."ID")' +
        ' WHEN MATCHED THEN UPDATE SET t."EMAIL" = s."EMAIL", t."SEEN" = s."SEEN"' +
        ' WHEN NOT MATCHED THEN INSERT ("ID", "EMAIL", "SEEN") VALUES (s."ID", s."EMAIL", s."SEEN")',
      defs: [{ kind: 'number' }, { kind: 'string', maxSize: 8 }, { kind: 'string', maxSize: 26 }],
      binds: [
        [1, 'a@x', '2024-01-02T03:04:05.000000'],
        [2, "O'Reilly", null],
      ],
    });
  });

  it('upserts the key alone without an UPDATE clause', () => {
    expect(buildStatement('upsert', { ...batch, columns: [ID], rows: [[1]] })?.sql).toBe(
      'MERGE INTO "CRM" t USING (SELECT :1 AS "ID" FROM DUAL) s ON (t."ID" = s."ID")' +
        ' WHEN NOT MATCHED THEN INSERT ("ID") VALUES (s."ID")',
    );
  });

  it('inserts one row per bind row', () => {
    expect(buildStatement('insert', batch)?.sql).toBe(
      'INSERT INTO "CRM" ("ID", "EMAIL", "SEEN") VALUES (:1, :2, :3)',
    );
  });

  it('updates by key, the key bound last', () => {
    const s = buildStatement('update', batch);
    expect(s?.sql).toBe('UPDATE "CRM" SET "EMAIL" = :1, "SEEN" = :2 WHERE "ID" = :3');
    expect(s?.binds).toEqual([
      ['a@x', '2024-01-02T03:04:05.000000', 1],
      ["O'Reilly", null, 2],
    ]);
    expect(s?.defs.map((d) => d.kind)).toEqual(['string', 'string', 'number']);
    expect(buildStatement('update', { ...batch, columns: [ID], rows: [[1]] })).toBeNull();
  });

  it('deletes by key', () => {
    expect(buildStatement('delete', { ...batch, columns: [ID], rows: [['7'], [8]] })).toEqual({
      sql: 'DELETE FROM "CRM" WHERE "ID" = :1',
      defs: [{ kind: 'string', maxSize: 1 }],
      binds: [['7'], ['8']],
    });
  });

  it('quotes owner, table and awkward column names exactly as stored', () => {
    const s = buildStatement('upsert', {
      table: '"APP"."Odd ""T"""',
      key: 'Key',
      columns: [c('Key', 'VARCHAR2'), c('Value;--', 'CLOB')],
      rows: [['k', 'v']],
    });
    expect(s?.sql).toBe(
      'MERGE INTO "APP"."Odd ""T""" t USING (SELECT :1 AS "Key", :2 AS "Value;--" FROM DUAL) s ON (t."Key" = s."Key")' +
        ' WHEN MATCHED THEN UPDATE SET t."Value;--" = s."Value;--"' +
        ' WHEN NOT MATCHED THEN INSERT ("Key", "Value;--") VALUES (s."Key", s."Value;--")',
    );
  });

  it('never puts a value in the SQL text', () => {
    const s = buildStatement('insert', { ...batch, rows: [[1, HOSTILE.dropTable, null]] });
    expect(s?.sql).not.toContain('DROP');
    expect(s?.binds[0]?.[1]).toBe(HOSTILE.dropTable);
  });
});

describe('oracle binds', () => {
  it('keeps numbers as numbers only when every value of a numeric column is one', () => {
    expect(bindFor(ID, [1, null, 2.5])).toEqual({ def: { kind: 'number' }, values: [1, null, 2.5] });
    expect(bindFor(ID, [1, '9007199254740993', true])).toEqual({
      def: { kind: 'string', maxSize: 16 },
      values: ['1', '9007199254740993', '1'],
    });
    expect(bindFor(ID, [true, false])).toEqual({ def: { kind: 'number' }, values: [1, 0] });
  });

  it('sizes text by bytes and switches to a CLOB past 32767 bytes', () => {
    expect(bindFor(EMAIL, ['é', null])).toEqual({ def: { kind: 'string', maxSize: 2 }, values: ['é', null] });
    expect(bindFor(c('DOC', 'CLOB'), ['short']).def).toEqual({ kind: 'clob' });
    expect(bindFor(EMAIL, [HOSTILE.long]).def).toEqual({ kind: 'clob' });
    expect(bindFor(EMAIL, [{ a: 1n }]).values).toEqual(['{"a":"1"}']);
    const all = bindFor(
      EMAIL,
      HOSTILE_NAMES.map((n) => HOSTILE[n]),
    );
    expect(all.values).toEqual(HOSTILE_NAMES.map((n) => HOSTILE[n]));
  });

  it('writes instants in the session formats, UTC', () => {
    const d = new Date('2024-01-02T03:04:05.123Z');
    expect(bindFor(c('D', 'DATE'), [d]).values).toEqual(['2024-01-02T03:04:05']);
    expect(bindFor(SEEN, ['2024-01-02T05:04:05.5+02:00']).values).toEqual(['2024-01-02T03:04:05.500000']);
    expect(bindFor(c('T', 'TIMESTAMP(6) WITH TIME ZONE'), [d]).values).toEqual([
      '2024-01-02T03:04:05.123000+00:00',
    ]);
    expect(SESSION_SQL).toContain(`NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.FF6'`);
    expect(SESSION_SQL).toContain("TIME_ZONE = 'UTC'");
  });

  it('binds bytes as RAW, or BLOB past 32767 bytes', () => {
    expect(bindFor(c('B', 'RAW'), [new Uint8Array([1, 2, 3]), null])).toEqual({
      def: { kind: 'raw', maxSize: 3 },
      values: [Buffer.from([1, 2, 3]), null],
    });
    expect(bindFor(c('B', 'BLOB'), [Buffer.alloc(40_000)]).def).toEqual({ kind: 'blob' });
  });
});

describe('oracle connector statements', () => {
  it('splits at semicolons outside quotes, q-quotes and comments, without the terminators', () => {
    expect(
      splitStatements(
        "INSERT INTO t VALUES ('a;b', 'it''s; ok', q'[x;']y]', \"c;\");\n-- note; here\nDELETE FROM t /* a; b */ WHERE k = 'ends with \\';\n;",
      ),
    ).toEqual([
      "INSERT INTO t VALUES ('a;b', 'it''s; ok', q'[x;']y]', \"c;\")",
      "-- note; here\nDELETE FROM t /* a; b */ WHERE k = 'ends with \\'",
    ]);
  });

  it('keeps a PL/SQL block whole, with its semicolons', () => {
    const block = "BEGIN\n  INSERT INTO t VALUES ('x;');\n  DELETE FROM u;\nEND;";
    expect(splitStatements(`  ${block}\n`)).toEqual([block]);
    expect(splitStatements('-- header\nDECLARE n NUMBER; BEGIN NULL; END;')).toHaveLength(1);
  });

  it('wraps a model for describe', () => {
    expect(describeSql('SELECT * FROM crm ORDER BY id;\n')).toBe(
      'SELECT * FROM (\nSELECT * FROM crm ORDER BY id\n) WHERE 1 = 0',
    );
  });
});

describe('oracle connection settings and errors', () => {
  it('parses the url into an Easy Connect string', () => {
    expect(
      parseOracleSettings(
        { type: 'oracle', url: 'oracle://app:p%40ss@db.example.com:1522/ORCLPDB1', statement_timeout: '30s' },
        'a',
      ),
    ).toEqual({
      user: 'app',
      password: 'p@ss',
      connectString: 'db.example.com:1522/ORCLPDB1',
      where: 'db.example.com:1522/ORCLPDB1',
      statementTimeoutMs: 30_000,
    });
    expect(parseOracleSettings({ type: 'oracle', url: 'oracle://u@h/S?ssl=true' }, 'a').connectString).toBe(
      'tcps://h:1521/S',
    );
    expect(() => parseOracleSettings({ type: 'oracle', url: 'oracle://u@h:1521' }, 'a')).toThrow(UserError);
    expect(() => parseOracleSettings({ type: 'oracle', url: 'oracle://h:1521/S' }, 'a')).toThrow(/no user/);
  });

  it('maps driver errors to codes with the address and without the password', () => {
    const s = parseOracleSettings({ type: 'oracle', url: 'oracle://app:hunter22@db:1521/FREEPDB1' }, 'a');
    const auth = toProviderError(
      Object.assign(new Error('ORA-01017: invalid credential or not authorized; logon denied'), {
        code: 'ORA-01017',
      }),
      s,
      'connect',
    );
    expect(auth.code).toBe('auth_failed');
    expect(auth.message).toContain('db:1521/FREEPDB1');
    const refused = toProviderError(
      Object.assign(
        new Error('NJS-503: connection to host db port 1521 could not be established.\nconnect ECONNREFUSED'),
        {
          code: 'NJS-503',
        },
      ),
      s,
      'connect',
    );
    expect(refused.code).toBe('connection_failed');
    expect(refused.retryable).toBe(true);
    expect(refused.message).not.toContain('ECONNREFUSED'); // the second line is dropped
    expect(toProviderError(new Error('NJS-123: call timeout of 1000 ms exceeded'), s, 'query').code).toBe(
      'statement_timeout',
    );
    expect(toProviderError(new Error('ORA-00942: table or view does not exist'), s, 'query').code).toBe(
      'query_failed',
    );
    expect(
      toProviderError(new Error('ORA-12514: cannot connect: service unknown'), s, 'connect').hint,
    ).toContain('FREEPDB1');
    expect(errorCode(new Error('ORA-00001: unique constraint violated'))).toBe('ORA-00001');
    expect(redact('oracle://app:hunter22@db and hunter22', s)).toBe('oracle://***@db and ***');
  });
});
