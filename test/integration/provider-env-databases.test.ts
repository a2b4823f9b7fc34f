// SQL Server, Oracle and BigQuery cannot run on the CI machines, so their suites run only where a
// connection is given (skipped here by design):
//   BACKFLOW_TEST_MSSQL_URL   mssql://sa:…@host:1433/db?trustServerCertificate=true
//   BACKFLOW_TEST_ORACLE_URL  oracle://user:…@host:1521/FREEPDB1
//   BACKFLOW_TEST_BIGQUERY    {"project":"…","dataset":"…","credentials":"key.json" or {…key…},"location":"EU"}
// Each runs the same expectations against a table of its own: every action, a bad record isolated,
// hostile values read back exactly, streaming in batches, the connector, a refused login.
// What needs no server runs everywhere: drivers load only with their provider, and a refused
// connection to SQL Server or Oracle (both drivers are pure JavaScript) reports the address.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provider as bigquery } from '../../providers/bigquery/index.js';
import { provider as mssql } from '../../providers/mssql/index.js';
import { provider as oracle } from '../../providers/oracle/index.js';
import type { ConnectionSettings, LoadRecord, Provider, Row, Session } from '../../providers/sdk.js';
import { ProviderError } from '../../providers/sdk.js';
import { HOSTILE, HOSTILE_NAMES } from '../fixtures/hostile-values.js';
import { freePorts } from '../harness/process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

/** What differs between the databases; everything else is the shared expectations below. */
interface EnvDatabase {
  readonly name: string;
  readonly provider: Provider;
  readonly settings: ConnectionSettings;
  /** The same settings with a wrong password (a refused login). */
  readonly badLogin?: ConnectionSettings;
  /** Table `name` (id, email NOT NULL, note): a check that email holds `@` where the database has checks. */
  readonly create: (table: string) => readonly string[];
  readonly drop: (table: string) => string;
  /** A query returning ids 1..n, ordered. */
  readonly series: (n: number) => string;
  /** A record the table refuses. */
  readonly badRecord: (key: string) => Record<string, unknown>;
}

function bigquerySettings(): ConnectionSettings {
  const env = JSON.parse(process.env.BACKFLOW_TEST_BIGQUERY ?? '{}') as Record<string, unknown>;
  const credentials = typeof env.credentials === 'string' ? env.credentials : JSON.stringify(env.credentials);
  return {
    type: 'bigquery',
    project: String(env.project),
    dataset: String(env.dataset),
    credentials,
    ...(typeof env.location === 'string' ? { location: env.location } : {}),
  };
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

const databases: readonly (EnvDatabase & { readonly enabled: boolean })[] = [
  {
    name: 'mssql',
    enabled: Boolean(process.env.BACKFLOW_TEST_MSSQL_URL),
    provider: mssql,
    settings: { type: 'mssql', url: process.env.BACKFLOW_TEST_MSSQL_URL ?? '' },
    badLogin: {
      type: 'mssql',
      url: withPassword(process.env.BACKFLOW_TEST_MSSQL_URL ?? 'mssql://u@h/db', 'wrong-Pa55'),
    },
    create: (t) => [
      `CREATE TABLE [${t}] (id bigint PRIMARY KEY, email nvarchar(200) NOT NULL CHECK (email LIKE '%@%'), note nvarchar(max) NULL)`,
    ],
    drop: (t) => `DROP TABLE IF EXISTS [${t}]`,
    series: (n) =>
      `SELECT TOP (${n}) CAST(ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS int) AS id FROM sys.all_objects a CROSS JOIN sys.all_objects b ORDER BY id`,
    badRecord: (key) => ({ id: Number(key), email: 'no-at-sign' }),
  },
  {
    name: 'oracle',
    enabled: Boolean(process.env.BACKFLOW_TEST_ORACLE_URL),
    provider: oracle,
    settings: { type: 'oracle', url: process.env.BACKFLOW_TEST_ORACLE_URL ?? '' },
    badLogin: {
      type: 'oracle',
      url: withPassword(process.env.BACKFLOW_TEST_ORACLE_URL ?? 'oracle://u@h/S', 'wrong-Pa55'),
    },
    create: (t) => [
      `CREATE TABLE ${t} (id NUMBER(19) PRIMARY KEY, email VARCHAR2(200) NOT NULL CHECK (email LIKE '%@%'), note CLOB)`,
    ],
    drop: (t) => `BEGIN EXECUTE IMMEDIATE 'DROP TABLE ${t} PURGE'; EXCEPTION WHEN OTHERS THEN NULL; END;`,
    series: (n) => `SELECT LEVEL AS id FROM DUAL CONNECT BY LEVEL <= ${n} ORDER BY id`,
    badRecord: (key) => ({ id: Number(key), email: 'no-at-sign' }),
  },
  {
    name: 'bigquery',
    enabled: Boolean(process.env.BACKFLOW_TEST_BIGQUERY),
    provider: bigquery,
    settings: process.env.BACKFLOW_TEST_BIGQUERY ? bigquerySettings() : { type: 'bigquery' },
    create: (t) => [`CREATE TABLE \`${t}\` (id INT64 NOT NULL, email STRING NOT NULL, note STRING)`],
    drop: (t) => `DROP TABLE IF EXISTS \`${t}\``,
    series: (n) => `SELECT id FROM UNNEST(GENERATE_ARRAY(1, ${n})) AS id ORDER BY id`,
    // No CHECK constraints: a key INT64 cannot take fails the job instead.
    badRecord: () => ({ id: 'not-a-number', email: 'x@x' }),
  },
];

const rec = (
  key: string,
  fields: Record<string, unknown> | null,
  change: LoadRecord['change'] = 'added',
): LoadRecord => ({
  change,
  key,
  idempotencyKey: `i-${key}`,
  fields,
});

/** Column names lower-cased (Oracle answers in upper case) and ids as text (drivers differ). */
function normal(rows: readonly Row[]): Record<string, unknown>[] {
  return rows.map((r) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r))
      out[k.toLowerCase()] = k.toLowerCase() === 'id' && v !== null ? String(v) : v;
    return out;
  });
}

for (const db of databases) {
  describe.skipIf(!db.enabled)(`${db.name} provider (live)`, () => {
    const table = `backflow_test_${suffix}`;
    let session: Session;
    const load = (action: 'upsert' | 'insert' | 'update' | 'delete' | 'mirror', records: LoadRecord[]) =>
      session.destination!.load({
        mapping: 'm',
        syncId: 's',
        action,
        options: { table, key: 'id' },
        records,
      });
    const read = async () =>
      normal((await session.sql!.query!({ sql: `SELECT id, email, note FROM ${table} ORDER BY id` })) ?? []);

    beforeAll(async () => {
      session = await db.provider.open({
        settings: db.settings,
        configDir: process.cwd(),
        address: `destination.${db.name}`,
      });
      await session.sql!.execute({ sql: db.drop(table) });
      for (const sql of db.create(table)) await session.sql!.execute({ sql });
    }, 300_000);
    afterAll(async () => {
      await session?.sql?.execute({ sql: db.drop(table) }).catch(() => undefined);
      await session?.close();
    }, 120_000);

    it('describes and streams a query in batches', async () => {
      const cols = await session.source!.describe({ sql: db.series(3) });
      expect(cols.map((c) => c.name.toLowerCase())).toEqual(['id']);
      const sizes: number[] = [];
      let last: unknown;
      for await (const batch of session.source!.stream({ sql: db.series(2500), batchSize: 1000 })) {
        sizes.push(batch.length);
        last = normal(batch).at(-1)?.id;
      }
      expect(sizes).toEqual([1000, 1000, 500]);
      expect(last).toBe('2500');
    }, 300_000);

    it('upserts, then updates through upsert', async () => {
      const first = await load('upsert', [
        rec('1', { id: 1, email: 'a@x', note: 'n' }),
        rec('2', { id: 2, email: 'b@x' }),
      ]);
      expect(first).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      const again = await load('upsert', [rec('2', { id: 2, email: 'b2@x', note: 'changed' }, 'updated')]);
      expect(again).toEqual([{ status: 'ok' }]);
      expect(await read()).toEqual([
        { id: '1', email: 'a@x', note: 'n' },
        { id: '2', email: 'b2@x', note: 'changed' },
      ]);
    }, 300_000);

    it('isolates a bad record and loads the others', async () => {
      const res = await load('upsert', [
        rec('3', { id: 3, email: 'c@x' }),
        rec('4', db.badRecord('4')),
        rec('5', { id: 5, email: 'e@x' }),
      ]);
      expect(res.map((r) => r.status)).toEqual(['ok', 'rejected', 'ok']);
      expect((await read()).map((r) => r.id)).toEqual(['1', '2', '3', '5']);
    }, 300_000);

    it('updates, deletes and mirrors by key', async () => {
      expect(await load('update', [rec('1', { email: 'a2@x' }, 'updated')])).toEqual([{ status: 'ok' }]);
      expect(await load('delete', [rec('3', null, 'deleted'), rec('99', null, 'deleted')])).toEqual([
        { status: 'ok' },
        { status: 'ok' },
      ]);
      const res = await load('mirror', [
        rec('5', null, 'deleted'),
        rec('2', { id: 2, email: 'b3@x', note: null }, 'updated'),
        rec('6', { id: 6, email: 'f@x' }, 'added'),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      expect((await read()).map((r) => [r.id, r.email])).toEqual([
        ['1', 'a2@x'],
        ['2', 'b3@x'],
        ['6', 'f@x'],
      ]);
    }, 300_000);

    it('inserts hostile values and reads them back exactly', async () => {
      const names = HOSTILE_NAMES.filter((n) => !(db.name === 'oracle' && n === 'empty')); // Oracle: '' is NULL
      const records = names.map((n, i) =>
        rec(String(100 + i), { id: 100 + i, email: `${n}@x`, note: HOSTILE[n] }),
      );
      const res = await load('insert', records);
      expect(res.every((r) => r.status === 'ok')).toBe(true);
      const rows = (await read()).filter((r) => Number(r.id) >= 100);
      expect(rows.map((r) => r.note)).toEqual(names.map((n) => HOSTILE[n]));
    }, 300_000);

    it('checks the table and its columns', async () => {
      const destination = session.destination!;
      expect(
        await destination.check!({
          action: 'upsert',
          options: { table, key: 'id' },
          fields: ['id', 'email'],
        }),
      ).toEqual([]);
      const problems = await destination.check!({
        action: 'upsert',
        options: { table, key: 'id' },
        fields: ['nope'],
      });
      expect(problems.map((p) => p.code)).toEqual(['column_not_found']);
      expect(
        (
          await destination.check!({ action: 'insert', options: { table: `${table}_missing` }, fields: [] })
        )[0]?.code,
      ).toBe('table_not_found');
    }, 300_000);

    it('runs connector SQL with several statements', async () => {
      const t = table;
      const q = db.name === 'mssql' ? (s: string) => `N'${s}'` : (s: string) => `'${s}'`;
      await session.sql!.execute({
        sql: `INSERT INTO ${t} (id, email) VALUES (200, ${q('x;y@x')});\nINSERT INTO ${t} (id, email) VALUES (201, ${q('z@x')});`,
      });
      const rows = normal(
        await session.sql!.query!({ sql: `SELECT id, email FROM ${t} WHERE id >= 200 ORDER BY id` }),
      );
      expect(rows).toEqual([
        { id: '200', email: 'x;y@x' },
        { id: '201', email: 'z@x' },
      ]);
    }, 300_000);

    it.skipIf(!db.badLogin)(
      'reports a refused login without the password',
      async () => {
        const e = await db.provider
          .open({ settings: db.badLogin!, configDir: process.cwd(), address: `destination.${db.name}` })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(e).toBeInstanceOf(ProviderError);
        expect((e as ProviderError).code).toBe('auth_failed');
        expect(`${(e as ProviderError).message} ${(e as ProviderError).hint}`).not.toContain('wrong-Pa55');
      },
      120_000,
    );
  });
}

describe('connection failures without a server', () => {
  for (const [name, provider, scheme] of [
    ['mssql', mssql, 'mssql'],
    ['oracle', oracle, 'oracle'],
  ] as const) {
    it(`${name}: a refused connection names the address, never the password`, async () => {
      const [port] = await freePorts(1);
      const url = `${scheme}://app:hunter22@127.0.0.1:${port}/${name === 'oracle' ? 'FREEPDB1' : 'crm'}`;
      const e = await provider
        .open({ settings: { type: name, url }, configDir: process.cwd(), address: `source.${name}` })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(e).toBeInstanceOf(ProviderError);
      const err = e as ProviderError;
      expect(err.code).toBe('connection_failed');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(`127.0.0.1:${port}`);
      expect(err.hint).toContain(`127.0.0.1:${port}`);
      expect(`${err.message} ${err.hint} ${String(err.stack)}`).not.toContain('hunter22');
    }, 60_000);
  }
});

describe('drivers load only with their provider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backflow-lazy-'));
  const probe = join(dir, 'probe.mjs');
  writeFileSync(
    probe,
    `import { createRequire } from 'node:module';
const mod = await import(process.argv[2]);
const cache = Object.keys(createRequire(import.meta.url).cache);
const drivers = { clickhouse: '/node_modules/@clickhouse/client/', mssql: '/node_modules/tedious/', oracle: '/node_modules/oracledb/', bigquery: '/node_modules/@google-cloud/bigquery/' };
console.log(JSON.stringify({ open: typeof mod.provider?.open, loaded: Object.entries(drivers).filter(([, p]) => cache.some((k) => k.includes(p))).map(([n]) => n) }));
`,
  );

  // mssql and oracle load their driver on first connect; clickhouse and bigquery on import.
  for (const [name, expected] of [
    ['clickhouse', ['clickhouse']],
    ['mssql', []],
    ['oracle', []],
    ['bigquery', ['bigquery']],
  ] as const) {
    it(`importing providers/${name} loads no other database driver`, () => {
      const out = spawnSync(
        join(ROOT, 'node_modules/.bin/vite-node'),
        [probe, join(ROOT, `providers/${name}/index.ts`)],
        {
          cwd: ROOT,
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      expect(out.status, out.stderr).toBe(0);
      const line = out.stdout.trim().split('\n').at(-1) ?? '';
      expect(JSON.parse(line)).toEqual({ open: 'function', loaded: expected });
    }, 90_000);
  }
});
