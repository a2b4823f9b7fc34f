// The exact DML the bigquery destination runs for each action, and the typed parameter it sends
// (an ARRAY of STRUCT read through UNNEST(@p1)). No BigQuery here: the integration suite in
// test/integration/provider-env-databases.test.ts runs when BACKFLOW_TEST_BIGQUERY is set.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parseBigquerySettings,
  plainValue,
  redact,
  toProviderError,
} from '../../providers/bigquery/connection.js';
import {
  type BigqueryBatch,
  type BigqueryColumn,
  buildStatement,
  paramType,
  paramValue,
} from '../../providers/bigquery/destination.js';
import { typeName } from '../../providers/bigquery/source.js';
import { UserError } from '../../providers/sdk.js';

const id: BigqueryColumn = { name: 'id', type: 'INTEGER', mode: 'REQUIRED' };
const email: BigqueryColumn = { name: 'email', type: 'STRING', mode: 'NULLABLE' };
const seen: BigqueryColumn = { name: 'seen', type: 'TIMESTAMP', mode: 'NULLABLE' };

const batch: BigqueryBatch = {
  table: 'crm',
  columns: [id, email, seen],
  rows: [
    ['1', 'a@x', '2024-01-02T05:04:05+02:00'],
    [2, "O'Reilly", null],
  ],
  keys: ['1', 2],
};

const rowsParam = [
  { c0: '1', c1: 'a@x', c2: { value: '2024-01-02T03:04:05.000Z' } },
  { c0: '2', c1: "O'Reilly", c2: null },
];
const rowsType = [{ c0: 'INT64', c1: 'STRING', c2: 'TIMESTAMP' }];

describe('bigquery statements', () => {
  it('upserts with one MERGE over UNNEST(@p1)', () => {
    expect(buildStatement('upsert', batch)).toEqual({
      sql:
        'MERGE `crm` AS t USING (SELECT * FROM UNNEST(@p1)) AS s ON t.`id` = s.c0' +
        ' WHEN MATCHED THEN UPDATE SET `email` = s.c1, `seen` = s.c2' +
        ' WHEN NOT MATCHED THEN INSERT (`id`, `email`, `seen`) VALUES (s.c0, s.c1, s.c2)',
      params: { p1: rowsParam },
      types: { p1: rowsType },
    });
  });

  it('inserts with INSERT … SELECT FROM UNNEST(@p1)', () => {
    expect(buildStatement('insert', batch)).toEqual({
      sql: 'INSERT INTO `crm` (`id`, `email`, `seen`) SELECT s.c0, s.c1, s.c2 FROM UNNEST(@p1) AS s',
      params: { p1: rowsParam },
      types: { p1: rowsType },
    });
  });

  it('updates with UPDATE … FROM UNNEST(@p1), never setting the key', () => {
    expect(buildStatement('update', batch)?.sql).toBe(
      'UPDATE `crm` AS t SET `email` = s.c1, `seen` = s.c2 FROM UNNEST(@p1) AS s WHERE t.`id` = s.c0',
    );
    expect(buildStatement('update', { ...batch, columns: [id], rows: [['1']] })).toBeNull();
  });

  it('deletes with IN UNNEST of the typed keys', () => {
    expect(
      buildStatement('delete', { table: 'ds.crm', columns: [id], rows: [null, null], keys: ['7', 8] }),
    ).toEqual({
      sql: 'DELETE FROM `ds`.`crm` WHERE `id` IN UNNEST(@p1)',
      params: { p1: ['7', '8'] },
      types: { p1: ['INT64'] },
    });
  });

  it('mirrors with a single MERGE: a delete flag per row', () => {
    const s = buildStatement('mirror', {
      ...batch,
      rows: [['1', 'a@x', null], null],
      keys: ['1', '2'],
    });
    expect(s).toEqual({
      sql:
        'MERGE `crm` AS t USING (SELECT * FROM UNNEST(@p1)) AS s ON t.`id` = s.c0' +
        ' WHEN MATCHED AND s.d THEN DELETE' +
        ' WHEN MATCHED THEN UPDATE SET `email` = s.c1, `seen` = s.c2' +
        ' WHEN NOT MATCHED AND NOT s.d THEN INSERT (`id`, `email`, `seen`) VALUES (s.c0, s.c1, s.c2)',
      params: {
        p1: [
          { c0: '1', c1: 'a@x', c2: null, d: false },
          { c0: '2', c1: null, c2: null, d: true },
        ],
      },
      types: { p1: [{ c0: 'INT64', c1: 'STRING', c2: 'TIMESTAMP', d: 'BOOL' }] },
    });
  });

  it('quotes every part of a qualified table and awkward names with backslash escapes', () => {
    const s = buildStatement('insert', {
      table: 'my-project.sales.odd`t',
      columns: [{ name: 'a`b', type: 'STRING' }],
      rows: [['v']],
      keys: ['v'],
    });
    expect(s?.sql).toBe(
      'INSERT INTO `my-project`.`sales`.`odd\\`t` (`a\\`b`) SELECT s.c0 FROM UNNEST(@p1) AS s',
    );
  });

  it('never puts a value in the SQL text', () => {
    const s = buildStatement('upsert', {
      ...batch,
      rows: [['1', "'; DROP TABLE crm; --", null]],
      keys: ['1'],
    });
    expect(s?.sql).not.toContain('DROP');
  });
});

describe('bigquery parameter types and values', () => {
  it('types parameters from the table schema, arrays and records included', () => {
    expect(
      paramType({
        name: 'r',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'a', type: 'DATE' },
          { name: 'b', type: 'FLOAT', mode: 'REPEATED' },
          { name: 'j', type: 'JSON' },
        ],
      }),
    ).toEqual([{ a: 'DATE', b: ['FLOAT64'], j: 'JSON' }]);
    expect(paramType({ type: 'BOOLEAN' })).toBe('BOOL');
    expect(paramType({ type: 'INTERVAL' })).toBe('STRING');
  });

  it('converts values for their column, wrapping the types the client reads from `.value`', () => {
    expect(paramValue({ plan: 'pro', n: 1n }, email)).toBe('{"plan":"pro","n":"1"}');
    expect(paramValue(9007199254740993n, id)).toBe('9007199254740993');
    expect(paramValue(new Date('2024-01-02T03:04:05Z'), { type: 'DATE' })).toEqual({ value: '2024-01-02' });
    expect(paramValue('2024-01-02T03:04:05.5Z', { type: 'DATETIME' })).toEqual({
      value: '2024-01-02T03:04:05.500',
    });
    expect(paramValue({ a: 1 }, { type: 'JSON' })).toBe('{"a":1}');
    expect(paramValue('{"a":1}', { type: 'JSON' })).toBe('{"a":1}');
    expect(paramValue('plain', { type: 'JSON' })).toBe('"plain"');
    expect(paramValue(new Uint8Array([255]), { type: 'BYTES' })).toBe('/w==');
    expect(paramValue(1, { type: 'BOOLEAN' })).toBe(true);
    expect(paramValue(null, { type: 'STRING', mode: 'REPEATED' })).toEqual([]);
    expect(paramValue('["x", "y"]', { type: 'STRING', mode: 'REPEATED' })).toEqual(['x', 'y']);
    expect(
      paramValue(
        { a: '2024-01-02', extra: 1 },
        {
          type: 'RECORD',
          fields: [
            { name: 'a', type: 'DATE' },
            { name: 'b', type: 'STRING' },
          ],
        },
      ),
    ).toEqual({ a: { value: '2024-01-02' }, b: null });
    expect(paramValue(Number.POSITIVE_INFINITY, { type: 'FLOAT' })).toBeNull();
  });

  it('reads result values as plain data', () => {
    class BigQueryInt extends Number {
      readonly type = 'BigQueryInt';
      readonly value = '9007199254740993';
    }
    class BigQueryTimestamp {
      readonly value = '2024-01-02T03:04:05.000Z';
    }
    expect(
      plainValue({ n: new BigQueryInt(0), t: new BigQueryTimestamp(), a: [{ value: 'kept', type: 'x' }] }),
    ).toEqual({
      n: '9007199254740993',
      t: '2024-01-02T03:04:05.000Z',
      a: [{ value: 'kept', type: 'x' }],
    });
    expect(typeName({ type: 'STRING', mode: 'REPEATED' })).toBe('array<string>');
    expect(typeName({ type: 'INTEGER' })).toBe('integer');
  });
});

describe('bigquery connection settings and errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bq-'));
  writeFileSync(join(dir, 'key.json'), '{"type":"service_account"}');

  it('resolves the key file against the config directory', () => {
    expect(
      parseBigquerySettings(
        {
          type: 'bigquery',
          project: 'acme-prod',
          dataset: 'crm',
          location: 'EU',
          credentials: 'key.json',
          statement_timeout: '2m',
        },
        dir,
        'destination.bq',
      ),
    ).toEqual({
      project: 'acme-prod',
      dataset: 'crm',
      location: 'EU',
      keyFilename: join(dir, 'key.json'),
      where: 'acme-prod/crm',
      statementTimeoutMs: 120_000,
    });
    expect(
      parseBigquerySettings(
        { type: 'bigquery', project: 'p', dataset: 'd', credentials: '{"type":"service_account"}' },
        dir,
        'a',
      ).credentials,
    ).toEqual({ type: 'service_account' });
    expect(() =>
      parseBigquerySettings(
        { type: 'bigquery', project: 'p', dataset: 'd', credentials: 'nope.json' },
        dir,
        'a',
      ),
    ).toThrow(/does not exist/);
    expect(() => parseBigquerySettings({ type: 'bigquery', dataset: 'd' }, dir, 'a')).toThrow(UserError);
    expect(() => parseBigquerySettings({ type: 'bigquery', project: 'p', dataset: 'd-x' }, dir, 'a')).toThrow(
      UserError,
    );
    expect(() =>
      parseBigquerySettings({ type: 'bigquery', project: 'p', dataset: 'd', credentials: '{oops' }, dir, 'a'),
    ).toThrow(/not a JSON key/);
  });

  it('maps API errors to codes naming the project and dataset', () => {
    const s = parseBigquerySettings({ type: 'bigquery', project: 'p', dataset: 'd' }, dir, 'a');
    const apiError = (message: string, code: number, reason: string) =>
      Object.assign(new Error(message), { code, errors: [{ reason, message }] });
    expect(toProviderError(apiError('Not found: Dataset p:d', 404, 'notFound'), s, 'connect').code).toBe(
      'connection_failed',
    );
    expect(toProviderError(new Error('invalid_grant: Invalid JWT Signature.'), s, 'connect').code).toBe(
      'auth_failed',
    );
    expect(
      toProviderError(apiError('Access Denied: Table p:d.t', 403, 'accessDenied'), s, 'query').code,
    ).toBe('auth_failed');
    expect(
      toProviderError(apiError('Exceeded rate limits', 403, 'rateLimitExceeded'), s, 'query').retryable,
    ).toBe(true);
    const q = toProviderError(
      apiError('Syntax error: Unexpected end of script', 400, 'invalidQuery'),
      s,
      'query',
    );
    expect(q.code).toBe('query_failed');
    expect(q.message).toContain('p/d');
    expect(redact('key -----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY----- end')).toBe('key *** end');
  });
});
