// The postgres provider against a real PostgreSQL server: awkward types read back exactly, bulk
// loads with per-record failures, check(), the connector, and every way a connection can fail.

import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timestamptzToIso } from '../../providers/postgres/connection.js';
import { dialect } from '../../providers/postgres/dialect.js';
import { provider } from '../../providers/postgres/index.js';
import type { LoadRecord, Row, Session } from '../../providers/sdk.js';
import { MemoryGrowth } from '../fixtures/memory.js';
import { AWKWARD_TABLE_SQL } from '../fixtures/postgres-awkward.js';
import { rejection } from '../fixtures/provider-errors.js';
import { drainSlowly, readUntilKilled } from '../fixtures/streams.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { freePorts, isRoot } from '../harness/process.js';
import { destinationContract } from './destination-contract.js';

const base = serverUrl('postgres');

async function open(url: string, extra: { statement_timeout?: string } = {}): Promise<Session> {
  return provider.open({
    settings: { type: 'postgres', url, ...extra },
    configDir: '/nonexistent',
    address: 'source.pg',
  });
}

async function collect(session: Session, sql: string, batchSize = 1000): Promise<Row[][]> {
  const batches: Row[][] = [];
  for await (const b of session.source!.stream({ sql, batchSize })) batches.push([...b]);
  return batches;
}

function rec(
  key: string,
  fields: Record<string, unknown> | null,
  change: LoadRecord['change'] = 'added',
): LoadRecord {
  return { change, key, idempotencyKey: `i-${key}`, fields };
}

describe('timestamptzToIso', () => {
  it('converts any offset to UTC and keeps every fractional digit', () => {
    expect(timestamptzToIso('2024-01-02 03:04:05.123456+00')).toBe('2024-01-02T03:04:05.123456Z');
    expect(timestamptzToIso('2024-01-02 03:04:05+05:30')).toBe('2024-01-01T21:34:05Z');
    expect(timestamptzToIso('0050-03-01 00:00:00-01')).toBe('0050-03-01T01:00:00Z');
    expect(timestamptzToIso('1900-01-01 00:00:00+00:53:28')).toBe('1899-12-31T23:06:32Z');
    expect(timestamptzToIso('infinity')).toBe('infinity');
    expect(timestamptzToIso('2024-01-02 03:04:05+00 BC')).toBe('2024-01-02 03:04:05+00 BC');
  });
});

describe.skipIf(!base)('postgres provider', () => {
  let url: string;
  let admin: pg.Client;
  let session: Session;

  beforeAll(async () => {
    url = await freshDatabase('postgres', 'provider_pg');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    session = await open(url);
  });
  afterAll(async () => {
    await session?.close();
    await admin?.end();
  });

  describe('source', () => {
    beforeAll(async () => {
      await admin.query(AWKWARD_TABLE_SQL);
    });

    it('reads awkward types exactly', async () => {
      const [rows] = await collect(session, 'SELECT * FROM awkward ORDER BY id');
      expect(rows).toEqual([
        {
          id: 1,
          big: '9007199254740993',
          num: '12345678901234567890.0123456789',
          ts: '2024-02-29T23:59:59.123456Z',
          tsl: '2024-02-29T23:59:59.5',
          d: '2024-02-29',
          doc: { a: { b: [1, 2, { c: null }] }, s: 'ünï' },
          js: { k: [true] },
          tags: ['x', 'y z', '"q"', null, 'a,b'],
          nums: ['0.1', '12345678901234567890.5'],
          name: 'Zoë — 日本語 🎉 O\'Reilly \\ "x"',
          flag: true,
          f: 0.5,
          iv: '1 day 02:00:00',
          b: Buffer.from([0, 255]),
        },
        {
          id: 2,
          big: '-9223372036854775808',
          num: '-0.0000000001',
          ts: '1970-01-01T00:00:00Z',
          tsl: null,
          d: null,
          doc: [],
          js: null,
          tags: [],
          nums: null,
          name: '',
          flag: false,
          f: null,
          iv: null,
          b: null,
        },
        {
          id: 3,
          big: null,
          num: null,
          ts: null,
          tsl: null,
          d: null,
          doc: null,
          js: null,
          tags: null,
          nums: null,
          name: null,
          flag: null,
          f: null,
          iv: null,
          b: null,
        },
      ]);
    });

    it('leaves the type parsers of other pg clients alone', async () => {
      const res = await admin.query('SELECT now()::timestamptz AS t');
      expect(res.rows[0]?.t).toBeInstanceOf(Date);
    });

    it('describes a query without running it to the end', async () => {
      const cols = await session.source!.describe({
        sql: 'SELECT id, big, num, ts, doc, tags, name, pg_sleep(5) AS slow FROM awkward; ',
      });
      expect(cols).toEqual([
        { name: 'id', type: 'integer' },
        { name: 'big', type: 'bigint' },
        { name: 'num', type: 'numeric' },
        { name: 'ts', type: 'timestamp with time zone' },
        { name: 'doc', type: 'jsonb' },
        { name: 'tags', type: 'text[]' },
        { name: 'name', type: 'text' },
        { name: 'slow', type: 'void' },
      ]);
    });

    it('describes a query ending in a line comment', async () => {
      const cols = await session.source!.describe({ sql: 'SELECT 1 AS one -- trailing comment' });
      expect(cols).toEqual([{ name: 'one', type: 'integer' }]);
    });

    it('streams in batches of batchSize', async () => {
      const batches = await collect(session, 'SELECT g AS id FROM generate_series(1, 2500) g', 1000);
      expect(batches.map((b) => b.length)).toEqual([1000, 1000, 500]);
      expect(batches[2]?.at(-1)).toEqual({ id: 2500 });
    });

    it('streams an empty result as no batches', async () => {
      expect(await collect(session, 'SELECT 1 AS x WHERE false')).toEqual([]);
    });

    it('returns the connection to the pool when the caller stops early', async () => {
      for (let i = 0; i < 6; i++) {
        for await (const b of session.source!.stream({
          sql: 'SELECT g FROM generate_series(1, 100000) g',
          batchSize: 100,
        })) {
          expect(b.length).toBe(100);
          break;
        }
      }
      const [rows] = await collect(session, 'SELECT 1 AS ok');
      expect(rows).toEqual([{ ok: 1 }]);
    });

    it('keeps memory flat while streaming a large result', async () => {
      let count = 0;
      const growth = new MemoryGrowth();
      for await (const b of session.source!.stream({
        sql: "SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 300000) g",
        batchSize: 2000,
      })) {
        count += b.length;
        growth.sample();
      }
      expect(count).toBe(300_000);
      // The whole result is ~100 MB as JS objects; two batches are ~1 MB.
      expect(growth.peak).toBeLessThan(25 * 1024 * 1024);
    });

    it('reports a syntax error with the server message', async () => {
      const e = await rejection(session.source!.describe({ sql: 'SELEC 1' }));
      expect(e.code).toBe('query_failed');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain('syntax error at or near "SELEC"');
      const e2 = await rejection(collect(session, 'SELECT * FROM no_such_table'));
      expect(e2.code).toBe('query_failed');
      expect(e2.message).toContain('relation "no_such_table" does not exist');
    });

    it('stops a query at statement_timeout', async () => {
      const s = await open(url, { statement_timeout: '200ms' });
      try {
        const e = await rejection(collect(s, 'SELECT pg_sleep(3)'));
        expect(e.code).toBe('statement_timeout');
        expect(e.retryable).toBe(true);
        expect(e.message).toContain('statement timeout');
        const [rows] = await collect(s, 'SELECT 1 AS ok');
        expect(rows).toEqual([{ ok: 1 }]);
        // The timeout bounds each fetch, not the whole stream: a slow consumer is not a slow query.
        const slow = await drainSlowly(
          s.source!.stream({ sql: 'SELECT g FROM generate_series(1, 5000) g', batchSize: 500 }),
        );
        expect(slow.rows).toBe(5000);
        expect(slow.ms).toBeGreaterThan(900);
      } finally {
        await s.close();
      }
    });

    it('fails retryably when the connection is killed mid-stream', async () => {
      const s = await open(url);
      try {
        const e = await rejection(
          readUntilKilled(
            s.source!.stream({ sql: 'SELECT g FROM generate_series(1, 5000000) g', batchSize: 499 }),
            499,
            async () => {
              const killed = await admin.query(
                `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
                  WHERE query LIKE 'FETCH FORWARD 499 FROM backflow_model%' AND pid <> pg_backend_pid()`,
              );
              expect(killed.rows.map((r) => r.ok)).toEqual([true]);
            },
          ),
        );
        expect(e.retryable).toBe(true);
        expect(e.code).toBe('connection_lost');
        // The session recovers with a new connection.
        const [rows] = await collect(s, 'SELECT 1 AS ok');
        expect(rows).toEqual([{ ok: 1 }]);
      } finally {
        await s.close();
      }
    });
  });

  describe('destination', () => {
    beforeAll(async () => {
      await admin.query(`
        CREATE TABLE crm (
          id bigint PRIMARY KEY, email text NOT NULL CHECK (email LIKE '%@%'), score numeric(30,10),
          seen timestamptz, traits jsonb, tags text[], note text);
        CREATE TABLE plain (id bigint, email text);
        CREATE SCHEMA "odd ""schema""";
        CREATE TABLE "odd ""schema"""."Odd Table" ("Key" text PRIMARY KEY, "Value;--" text);`);
    });

    const load = (
      action: LoadRecord['change'] extends never ? never : string,
      records: LoadRecord[],
      table = 'crm',
      key = 'id',
    ) =>
      session.destination!.load({
        mapping: 'm',
        syncId: 's',
        action: action as 'upsert',
        options: { table, key },
        records,
      });

    async function table(sql = 'SELECT * FROM crm ORDER BY id'): Promise<Row[]> {
      const [rows] = await collect(session, sql);
      return rows ?? [];
    }

    it('upserts awkward values and reads them back exactly', async () => {
      await admin.query('TRUNCATE crm');
      const res = await load('upsert', [
        rec('9007199254740993', {
          id: '9007199254740993',
          email: 'zoë@example.com',
          score: '12345678901234567890.0123456789',
          seen: '2024-02-29T23:59:59.123456Z',
          traits: { plan: 'pro', nested: { list: [1, 'two', null] } },
          tags: ['a', 'b,c', '"d"', null],
          note: 'Zoë — 日本語 🎉 O\'Reilly \\ "x"',
        }),
        rec('2', {
          id: 2,
          email: 'b@x',
          score: null,
          seen: null,
          traits: '{"from":"text"}',
          tags: [],
          note: null,
        }),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      expect(await table()).toEqual([
        { id: '2', email: 'b@x', score: null, seen: null, traits: { from: 'text' }, tags: [], note: null },
        {
          id: '9007199254740993',
          email: 'zoë@example.com',
          score: '12345678901234567890.0123456789',
          seen: '2024-02-29T23:59:59.123456Z',
          traits: { plan: 'pro', nested: { list: [1, 'two', null] } },
          tags: ['a', 'b,c', '"d"', null],
          note: 'Zoë — 日本語 🎉 O\'Reilly \\ "x"',
        },
      ]);
      const again = await load('upsert', [
        rec(
          '2',
          { id: 2, email: 'b2@x', score: '1.5', seen: null, traits: null, tags: null, note: 'n' },
          'updated',
        ),
      ]);
      expect(again).toEqual([{ status: 'ok' }]);
      expect((await table('SELECT email, score, note FROM crm WHERE id = 2'))[0]).toEqual({
        email: 'b2@x',
        score: '1.5000000000',
        note: 'n',
      });
    });

    it('round-trips a source read into a destination write', async () => {
      await admin.query('TRUNCATE crm');
      const [rows] = await collect(
        session,
        `SELECT 9007199254740993::bigint AS id, 'r@x' AS email, 0.1::numeric(30,10) AS score,
                '2001-02-03 04:05:06.789+02'::timestamptz AS seen, '{"z":{"y":[1]}}'::jsonb AS traits,
                ARRAY['é', NULL]::text[] AS tags, NULL::text AS note`,
      );
      const row = rows![0]!;
      expect(await load('upsert', [rec(String(row.id), row)])).toEqual([{ status: 'ok' }]);
      expect(await table()).toEqual([{ ...row, seen: '2001-02-03T02:05:06.789Z', score: '0.1000000000' }]);
    });

    it('bulk-loads through COPY with awkward values exactly as the statement path does', async () => {
      await admin.query(`CREATE TABLE IF NOT EXISTS bulk (
        id bigint PRIMARY KEY, t text, n numeric(30,10), ts timestamptz, j jsonb, arr text[], grid int[][],
        flag boolean, bin bytea, f float8)`);
      await admin.query('TRUNCATE bulk');
      const nasty = 'tab\there\nnew\\line\r "q" \'s\' \\N {a,b} NULL 🎉';
      const fields = (i: number) => ({
        id: String(9007199254740000 + i),
        t: i % 7 === 0 ? null : `${nasty} ${i}`,
        n: `${i}.0123456789`,
        ts: '2024-02-29T23:59:59.123456Z',
        j: i % 2 ? { s: nasty, nested: [1, null, { x: 'y' }] } : `{"from":"text","i":${i}}`,
        arr: i % 5 === 0 ? [] : ['a', nasty, null, 'NULL', '', 'x,y'],
        grid: [
          [1, 2],
          [3, i],
        ],
        flag: i % 3 === 0,
        bin: Buffer.from([0, 9, 10, 92, 255]),
        f: i / 4,
      });
      const records = Array.from({ length: 300 }, (_, i) => rec(String(9007199254740000 + i), fields(i)));
      const loadTables = async () =>
        (
          await admin.query(
            "SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'backflow_load_%' AND relpersistence = 't'",
          )
        ).rows[0].n as number;
      const before = await loadTables();
      // Records new to the snapshot are COPYed straight into the table.
      expect(await load('upsert', records, 'bulk')).toEqual(records.map(() => ({ status: 'ok' })));
      expect(await loadTables()).toBe(before);
      // Again, as updates: COPY into the session's load table, then INSERT … ON CONFLICT.
      expect(
        await load(
          'upsert',
          records.map((r) => ({ ...r, change: 'updated' as const })),
          'bulk',
        ),
      ).toHaveLength(300);
      expect(await loadTables()).toBeGreaterThan(before);
      const rows = await table('SELECT * FROM bulk ORDER BY id');
      expect(rows).toHaveLength(300);
      rows.forEach((row, i) => {
        const want = fields(i);
        expect(row).toEqual({
          ...want,
          j: typeof want.j === 'string' ? JSON.parse(want.j) : want.j,
          bin: Buffer.from([0, 9, 10, 92, 255]),
        });
      });
      // A few records through the statement path read back the same.
      await admin.query('TRUNCATE bulk');
      await load('upsert', records.slice(0, 10), 'bulk');
      expect(await table('SELECT * FROM bulk ORDER BY id')).toEqual(rows.slice(0, 10));
    });

    it("loads a record's source COPY text as it is where the column types allow, and its fields otherwise", async () => {
      await admin.query(`CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 100);
        CREATE TABLE passthrough (id bigint PRIMARY KEY, v text, doc jsonb, iv interval, dom short_text)`);
      const asked: { format: string; fields: readonly string[]; types: readonly number[] }[] = [];
      // The text says `from text`, the fields say `from fields`: the table shows which was loaded.
      const record = (i: number, line: string, fields: Record<string, unknown>): LoadRecord => ({
        change: 'added',
        key: String(i),
        idempotencyKey: `i-${i}`,
        fields: { id: String(i), ...fields },
        sourceText(format, names, types) {
          asked.push({ format, fields: names, types });
          return types.some((t) => t < 0) ? undefined : Buffer.from(line);
        },
      });
      const batch = (line: (i: number) => string, fields: (i: number) => Record<string, unknown>) =>
        Array.from({ length: 60 }, (_, i) => record(i + 1, line(i + 1), fields(i + 1)));
      const rows = () => table('SELECT id, v, doc FROM passthrough ORDER BY id');

      const text = (i: number) => `${i}\tfrom text\\t${i}\t{"i": ${i}, "price": 1.50}\n`;
      const fields = (i: number) => ({ v: `from fields ${i}`, doc: { i } });
      expect(await load('upsert', batch(text, fields), 'passthrough')).toEqual(
        Array.from({ length: 60 }, () => ({ status: 'ok' })),
      );
      expect(asked[0]).toEqual({
        format: 'postgres-copy',
        fields: ['id', 'v', 'doc'],
        types: [20, 25, 3802],
      });
      expect((await rows())[6]).toEqual({ id: '7', v: 'from text\t7', doc: { i: 7, price: 1.5 } });
      expect((await admin.query(`SELECT doc::text AS doc FROM passthrough WHERE id = 7`)).rows[0].doc).toBe(
        '{"i": 7, "price": 1.50}',
      );

      // A NULL in the key column's text: the batch is encoded from the fields (the key comes from the record).
      await admin.query('TRUNCATE passthrough');
      const nullKey = (i: number) => (i === 9 ? text(i).replace(/^9/, '\\N') : text(i));
      await load('upsert', batch(nullKey, fields), 'passthrough');
      expect((await rows()).map((r) => r.v)).toEqual(
        Array.from({ length: 60 }, (_, i) => `from fields ${i + 1}`),
      );

      // interval (its text follows IntervalStyle) and a domain (a user type): the fields again.
      await admin.query('TRUNCATE passthrough');
      asked.length = 0;
      await load(
        'upsert',
        batch(text, (i) => ({ ...fields(i), iv: '1 day', dom: 'd' })),
        'passthrough',
      );
      expect(asked[0]!.fields).toEqual(['id', 'v', 'doc', 'iv', 'dom']);
      expect(asked[0]!.types.slice(0, 3)).toEqual([20, 25, 3802]);
      expect(asked[0]!.types.slice(3)).toEqual([-1, -1]);
      expect((await rows())[0]).toEqual({ id: '1', v: 'from fields 1', doc: { i: 1 } });
    });

    it('upserts "added" records that are already in the table (a reset, rows loaded by hand)', async () => {
      await admin.query('CREATE TABLE IF NOT EXISTS readded (id bigint PRIMARY KEY, v text)');
      await admin.query('TRUNCATE readded');
      await admin.query("INSERT INTO readded VALUES (5, 'old'), (150, 'old')");
      const records = Array.from({ length: 200 }, (_, i) =>
        rec(String(i + 1), { id: String(i + 1), v: `new ${i + 1}` }),
      );
      expect(await load('upsert', records, 'readded')).toEqual(records.map(() => ({ status: 'ok' })));
      const rows = await table('SELECT id, v FROM readded ORDER BY id');
      expect(rows).toHaveLength(200);
      expect(rows[4]).toEqual({ id: '5', v: 'new 5' });
      expect(rows[149]).toEqual({ id: '150', v: 'new 150' });
    });

    it('inserts in bulk and isolates the failing records of a large batch', async () => {
      await admin.query('TRUNCATE crm');
      const records = Array.from({ length: 500 }, (_, i) =>
        rec(String(i), { id: i, email: i === 123 || i === 456 ? 'broken' : `u${i}@x`, traits: { i } }),
      );
      const res = await load('insert', records);
      expect(res.flatMap((r, i) => (r.status === 'ok' ? [] : [i]))).toEqual([123, 456]);
      expect(res[123]).toMatchObject({ code: 'check_violation' });
      const upserted = await load(
        'upsert',
        records.map((r) => (r.key === '200' ? rec('200', { id: 200, email: null }) : r)),
      );
      expect(upserted.flatMap((r, i) => (r.status === 'ok' ? [] : [i]))).toEqual([123, 200, 456]);
      expect((await table('SELECT count(*)::int AS n FROM crm'))[0]).toEqual({ n: 498 });
    });

    it('rejects only the records that break a constraint, with the server message, in order', async () => {
      await admin.query('TRUNCATE crm');
      const records = Array.from({ length: 50 }, (_, i) =>
        rec(String(i), {
          id: i,
          email: i === 7 || i === 31 ? 'no-at-sign' : `u${i}@x`,
          note: i === 44 ? null : 'n',
        }),
      );
      records[20] = rec('20', { id: 20, email: null });
      const res = await load('upsert', records);
      expect(res).toHaveLength(50);
      const failed = res.flatMap((r, i) => (r.status === 'ok' ? [] : [{ i, ...r }]));
      expect(failed).toEqual([
        {
          i: 7,
          status: 'rejected',
          code: 'check_violation',
          message: expect.stringContaining('violates check constraint "crm_email_check"'),
        },
        {
          i: 20,
          status: 'rejected',
          code: 'not_null_violation',
          message: expect.stringContaining('null value in column "email"'),
        },
        {
          i: 31,
          status: 'rejected',
          code: 'check_violation',
          message: expect.stringContaining('crm_email_check'),
        },
      ]);
      expect((await table('SELECT count(*)::int AS n FROM crm'))[0]).toEqual({ n: 47 });
    });

    it('rejects a value the column type refuses', async () => {
      await admin.query('TRUNCATE crm');
      const res = await load('upsert', [
        rec('1', { id: 1, email: 'a@x', seen: 'not a time' }),
        rec('2', { id: 2, email: 'b@x', score: 'NaNx' }),
        rec('3', { id: 3, email: 'c@x', score: '1e40' }),
        rec('4', { id: 4, email: 'd@x' }),
      ]);
      expect(res.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'ok']);
      expect(res[0]).toMatchObject({
        message: expect.stringContaining('invalid input syntax for type timestamp with time zone'),
      });
      expect(res[2]).toMatchObject({ code: 'value_out_of_range' });
    });

    it('inserts, and rejects a duplicate key', async () => {
      await admin.query('TRUNCATE crm');
      expect(await load('insert', [rec('1', { id: 1, email: 'a@x' })])).toEqual([{ status: 'ok' }]);
      const res = await load('insert', [
        rec('1', { id: 1, email: 'again@x' }),
        rec('2', { id: 2, email: 'b@x' }),
      ]);
      expect(res).toEqual([
        {
          status: 'rejected',
          code: 'unique_violation',
          message: expect.stringContaining('Key (id)=(1) already exists'),
        },
        { status: 'ok' },
      ]);
    });

    it('updates existing rows and deletes by key', async () => {
      await admin.query(
        "TRUNCATE crm; INSERT INTO crm (id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x')",
      );
      const up = await load('update', [
        rec('1', { email: 'a2@x' }, 'updated'),
        rec('2', { id: 2, email: 'b2@x', note: 'x' }, 'updated'),
      ]);
      expect(up).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      const del = await load('delete', [rec('3', null, 'deleted'), rec('99', null, 'deleted')]);
      expect(del).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      expect(await table('SELECT id, email, note FROM crm ORDER BY id')).toEqual([
        { id: '1', email: 'a2@x', note: null },
        { id: '2', email: 'b2@x', note: 'x' },
      ]);
    });

    it('mirrors: upserts and deletes in one batch', async () => {
      await admin.query("TRUNCATE crm; INSERT INTO crm (id, email) VALUES (1, 'a@x'), (2, 'b@x')");
      const res = await load('mirror', [
        rec('1', null, 'deleted'),
        rec('2', { id: 2, email: 'b3@x' }, 'updated'),
        rec('3', { id: 3, email: 'c@x' }, 'added'),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      expect(await table('SELECT id, email FROM crm ORDER BY id')).toEqual([
        { id: '2', email: 'b3@x' },
        { id: '3', email: 'c@x' },
      ]);
    });

    it('quotes hostile schema, table and column names', async () => {
      const t = 'odd "schema".Odd Table';
      const res = await load('upsert', [rec("k'1", { 'Value;--': "v'); DROP TABLE crm; --" })], t, 'Key');
      expect(res).toEqual([{ status: 'ok' }]);
      expect(await table('SELECT * FROM "odd ""schema"""."Odd Table"')).toEqual([
        { Key: "k'1", 'Value;--': "v'); DROP TABLE crm; --" },
      ]);
    });

    it('checks the table, the key and the columns without writing', async () => {
      const check = (
        action: 'upsert' | 'insert' | 'update',
        table: string,
        key: string | undefined,
        fields: string[],
      ) => session.destination!.check!({ action, options: { table, ...(key ? { key } : {}) }, fields });
      expect(await check('upsert', 'crm', 'id', ['email', 'traits'])).toEqual([]);
      expect(await check('upsert', 'nope', 'id', ['email'])).toEqual([
        expect.objectContaining({ code: 'table_not_found', hint: expect.any(String) }),
      ]);
      expect(await check('upsert', 'crm', 'idd', ['emial'])).toEqual([
        expect.objectContaining({ code: 'key_column_not_found', hint: 'did you mean id?' }),
        expect.objectContaining({
          code: 'column_not_found',
          message: expect.stringContaining('emial'),
          hint: 'did you mean email?',
        }),
      ]);
      expect(await check('upsert', 'plain', 'id', ['email'])).toEqual([
        expect.objectContaining({ code: 'key_not_unique', hint: 'CREATE UNIQUE INDEX ON "plain" ("id")' }),
      ]);
      expect(await check('update', 'plain', 'id', ['email'])).toEqual([]);
      expect(await check('insert', 'plain', undefined, ['email'])).toEqual([]);
    });

    it('fails the whole batch when the table is missing', async () => {
      const e = await rejection(load('upsert', [rec('1', { id: 1 })], 'missing_table'));
      expect(e.code).toBe('table_not_found');
    });

    it('refuses to upsert on a key without a unique index, rather than insert duplicates', async () => {
      const e = await rejection(load('upsert', [rec('1', { id: 1, email: 'a@x' })], 'plain'));
      expect(e.code).toBe('key_not_unique');
      expect(e.hint).toContain('UNIQUE');
      const [rows] = await collect(session, 'SELECT count(*) AS n FROM plain');
      expect(Number(rows![0]!.n)).toBe(0);
    });
  });

  describe('connector', () => {
    it('executes several statements in one call and queries rows', async () => {
      const res = await session.sql!.execute({
        sql: "CREATE TABLE seg (id text); INSERT INTO seg VALUES ('a'), ('b'); INSERT INTO seg VALUES ('c');",
      });
      expect(res.rowsAffected).toBe(3);
      expect(await session.sql!.query!({ sql: 'SELECT id FROM seg ORDER BY id' })).toEqual([
        { id: 'a' },
        { id: 'b' },
        { id: 'c' },
      ]);
      const e = await rejection(session.sql!.execute({ sql: 'INSERT INTO seg VALUES (1, 2)' }));
      expect(e.code).toBe('query_failed');
      expect(e.message).toContain('INSERT has more expressions than target columns');
    });
  });

  describe('connection failures', () => {
    it('says the server is unreachable', async () => {
      const [port] = await freePorts(1);
      const e = await rejection(open(`postgres://postgres@127.0.0.1:${port}/postgres`));
      expect(e.code).toBe('connection_failed');
      expect(e.retryable).toBe(true);
      expect(e.hint).toMatch(/running/);
      expect(e.message).toContain(`127.0.0.1:${port}/postgres`);
    });

    it('says the database does not exist', async () => {
      const u = new URL(url);
      u.pathname = '/no_such_db';
      const e = await rejection(open(u.toString()));
      expect(e.code).toBe('connection_failed');
      expect(e.message).toContain('database "no_such_db" does not exist');
      expect(e.hint).toMatch(/database name/);
    });

    it.skipIf(!isRoot())('says the password is wrong, without echoing it', async () => {
      // The test server trusts every login; require a password for one role of our own.
      const hbaFile = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
      const hba = readFileSync(hbaFile, 'utf8');
      if (!hba.includes('bf_pw_user')) {
        writeFileSync(hbaFile, `host all bf_pw_user 127.0.0.1/32 scram-sha-256\n${hba}`);
        await admin.query('SELECT pg_reload_conf()');
      }
      await admin.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bf_pw_user') THEN
          CREATE ROLE bf_pw_user LOGIN PASSWORD 'right-password'; END IF; END $$`);
      const u = new URL(url);
      u.username = 'bf_pw_user';
      u.password = 'wrong-s3cret';
      const e = await rejection(open(u.toString()));
      expect(e.code).toBe('auth_failed');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain('password authentication failed');
      expect(`${e.message} ${e.hint}`).not.toContain('wrong-s3cret');
      u.password = 'right-password';
      const ok = await open(u.toString());
      await ok.close();
    });

    it('refuses a URL that is not postgres', async () => {
      await expect(open('mysql://x@y/z')).rejects.toThrow(/must start with postgres/);
    });
  });

  describe('shared contract', () => {
    let contractUrl: string;
    let contractAdmin: pg.Client;
    beforeAll(async () => {
      contractUrl = await freshDatabase('postgres', 'contract_pg');
      contractAdmin = new pg.Client({ connectionString: contractUrl });
      await contractAdmin.connect();
    });
    afterAll(async () => {
      await contractAdmin?.end();
    });
    destinationContract('postgres', {
      name: 'postgres',
      dialect,
      open: () => open(contractUrl),
      exec: async (sql) => {
        await contractAdmin.query(sql);
      },
      query: async (sql) => (await contractAdmin.query(sql)).rows,
    });
  });
});
