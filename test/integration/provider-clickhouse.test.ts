// The clickhouse provider against a real ClickHouse server (18.16 from Debian, started by the
// harness): every destination action, per-record failure isolation, streaming, the connector and
// every way a connection can fail. The SQL each action sends is pinned here too.

import { type ClickHouseClient, createClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseClickhouseSettings,
  redact,
  serverError,
  splitStatements,
} from '../../providers/clickhouse/connection.js';
import {
  deleteStatement,
  insertRows,
  jsonValue,
  updateStatement,
} from '../../providers/clickhouse/destination.js';
import { dialect } from '../../providers/clickhouse/dialect.js';
import { provider } from '../../providers/clickhouse/index.js';
import type { ActionName, LoadRecord, Row, Session } from '../../providers/sdk.js';
import { UserError } from '../../providers/sdk.js';
import { HOSTILE, HOSTILE_NAMES } from '../fixtures/hostile-values.js';
import { MemoryGrowth } from '../fixtures/memory.js';
import { rejection } from '../fixtures/provider-errors.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { freePorts } from '../harness/process.js';

const base = serverUrl('clickhouse');

/** The harness's `http://127.0.0.1:PORT/db` as the `clickhouse://` URL users write. */
function userUrl(httpUrl: string, user = 'default', password = ''): string {
  const u = new URL(httpUrl);
  return `clickhouse://${user}${password ? `:${password}` : ''}@${u.host}${u.pathname}`;
}

async function open(url: string, extra: { statement_timeout?: string } = {}): Promise<Session> {
  return provider.open({
    settings: { type: 'clickhouse', url, ...extra },
    configDir: '/nonexistent',
    address: 'destination.ch',
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

describe('clickhouse settings and text helpers', () => {
  it('parses clickhouse:// URLs into the HTTP origin, login and database', () => {
    const s = parseClickhouseSettings(
      {
        type: 'clickhouse',
        url: 'clickhouse://etl:s%40cret@ch.example.com:8124/analytics',
        statement_timeout: '90s',
      },
      'source.ch',
    );
    expect(s).toEqual({
      origin: 'http://ch.example.com:8124',
      username: 'etl',
      password: 's@cret',
      database: 'analytics',
      where: 'ch.example.com:8124/analytics',
      statementTimeoutMs: 90_000,
    });
    expect(parseClickhouseSettings({ type: 'clickhouse', url: 'clickhouses://h' }, 'a')).toMatchObject({
      origin: 'https://h:8443',
      username: 'default',
      database: 'default',
      where: 'h:8443/default',
    });
    expect(() => parseClickhouseSettings({ type: 'clickhouse', url: 'mysql://h' }, 'source.ch')).toThrow(
      UserError,
    );
    expect(() =>
      parseClickhouseSettings(
        { type: 'clickhouse', url: 'clickhouse://h', statement_timeout: 'soon' },
        'source.ch',
      ),
    ).toThrow(/statement_timeout/);
  });

  it('never puts a password in a message', () => {
    expect(redact('failed for http://u:hunter22@h:8123/x and hunter22', { password: 'hunter22' })).toBe(
      'failed for http://***@h:8123/x and ***',
    );
  });

  it('reads the server error of 18.x and of newer servers', () => {
    expect(
      serverError(
        new Error(
          "Code: 60, e.displayText() = DB::Exception: Table d.t doesn't exist., e.what() = DB::Exception\n",
        ),
      ),
    ).toEqual({ code: 60, message: "Table d.t doesn't exist." });
    expect(
      serverError(
        new Error('Code: 60. DB::Exception: Table d.t does not exist. (UNKNOWN_TABLE) (version 23.8)'),
      ),
    ).toEqual({
      code: 60,
      message: 'Table d.t does not exist. (UNKNOWN_TABLE) (version 23.8)',
    });
    expect(serverError(new Error('connect ECONNREFUSED'))).toBeUndefined();
  });

  it('splits statements only at semicolons outside quotes and comments', () => {
    expect(
      splitStatements(
        "INSERT INTO t VALUES ('a;b', \"c;\", `d;`, 'it\\'s;', 'x'';y');\n-- note; here\nDELETE FROM t /* a; b */ WHERE 1;  ;\n  -- only a comment;\n",
      ),
    ).toEqual([
      "INSERT INTO t VALUES ('a;b', \"c;\", `d;`, 'it\\'s;', 'x'';y')",
      '-- note; here\nDELETE FROM t /* a; b */ WHERE 1',
    ]);
    expect(splitStatements('SELECT 1')).toEqual(['SELECT 1']);
    expect(splitStatements('  ;; -- x')).toEqual([]);
  });

  it('writes the exact SQL of each mutation, quoting names and casting values to the column types', () => {
    const columns = new Map([
      ['id', 'UInt64'],
      ['e`mail', 'String'],
      ['score', 'Nullable(Float64)'],
      ['tags', 'Array(String)'],
      ['seen', 'DateTime'],
      ['note', 'Nullable(String)'],
    ]);
    expect(deleteStatement('db.t`x', 'id', columns, [{ key: '1' }, { key: "2' OR 1" }])).toBe(
      "ALTER TABLE `db`.`t\\`x` DELETE WHERE `id` IN (CAST('1', 'UInt64'), CAST('2\\' OR 1', 'UInt64'))",
    );
    expect(
      updateStatement('t', 'id', columns, [
        { key: '1', row: { id: '1', 'e`mail': "O'Reilly\\", score: null } },
        { key: 2, row: { note: 'x', tags: ['a', "b'"], seen: '2024-01-02T03:04:05Z' } },
      ]),
    ).toBe(
      'ALTER TABLE `t` UPDATE ' +
        "`e\\`mail` = multiIf(`id` = CAST('1', 'UInt64'), CAST('O\\'Reilly\\\\', 'String'), `e\\`mail`), " +
        "`score` = multiIf(`id` = CAST('1', 'UInt64'), CAST(NULL, 'Nullable(Float64)'), `score`), " +
        "`note` = multiIf(`id` = CAST(2, 'UInt64'), CAST(CAST('x', 'String'), 'Nullable(String)'), `note`), " +
        "`tags` = multiIf(`id` = CAST(2, 'UInt64'), CAST(['a', 'b\\''], 'Array(String)'), `tags`), " +
        "`seen` = multiIf(`id` = CAST(2, 'UInt64'), CAST(1704164645, 'DateTime'), `seen`) " +
        "WHERE `id` IN (CAST('1', 'UInt64'), CAST(2, 'UInt64'))",
    );
    expect(updateStatement('t', 'id', columns, [{ key: '1', row: { id: '1' } }])).toBeNull();
    const strKey = new Map([['k', 'LowCardinality(String)']]);
    expect(deleteStatement('t', 'k', strKey, [{ key: 'a\nb' }])).toBe(
      "ALTER TABLE `t` DELETE WHERE `k` IN ('a\\nb')",
    );
  });

  it('converts values for JSONEachRow by column type', () => {
    expect(jsonValue({ a: 1n }, 'String')).toBe('{"a":"1"}');
    expect(jsonValue('["x"]', 'Array(String)')).toEqual(['x']);
    expect(jsonValue(true, 'UInt8')).toBe(1);
    expect(jsonValue(12n, 'Int64')).toBe('12');
    expect(jsonValue(new Date('2024-01-02T03:04:05.900Z'), 'DateTime')).toBe(1704164645);
    expect(jsonValue('2024-01-02T05:04:05+02:00', 'Nullable(DateTime)')).toBe(1704164645);
    expect(jsonValue(new Date('2024-01-02T03:04:05Z'), 'Date')).toBe('2024-01-02');
    expect(jsonValue(Number.NaN, 'Float64')).toBeNull();
    expect(
      insertRows(
        [{ row: { a: null, b: null, c: 1 } }],
        new Map([
          ['a', 'String'],
          ['b', 'Nullable(String)'],
          ['c', 'UInt8'],
        ]),
      ),
    ).toEqual([{ b: null, c: 1 }]);
  });
});

describe.skipIf(!base)('clickhouse provider on a real server', () => {
  let httpUrl: string;
  let url: string;
  let admin: ClickHouseClient;
  let session: Session;

  const run = (query: string) => admin.command({ query });
  async function select<T = Row>(query: string): Promise<T[]> {
    const rs = await admin.query({ query, format: 'JSONEachRow' });
    return rs.json<T>();
  }

  beforeAll(async () => {
    httpUrl = await freshDatabase('clickhouse', 'provider_ch');
    url = userUrl(httpUrl);
    admin = createClient({ url: httpUrl });
    session = await open(url);
  });
  afterAll(async () => {
    await session?.close();
    await admin?.close();
  });

  describe('source', () => {
    it('describes a query without running it, with lower-case type names', async () => {
      const cols = await session.source!.describe({
        sql: "SELECT toUInt64(1) AS id, 'x' AS name, [1, 2] AS arr, toNullable(toDateTime('2024-01-01 00:00:00')) AS t, sleep(3) AS slow; -- trailing comment",
      });
      expect(cols).toEqual([
        { name: 'id', type: 'uint64' },
        { name: 'name', type: 'string' },
        { name: 'arr', type: 'array(uint8)' },
        { name: 't', type: 'nullable(datetime)' },
        { name: 'slow', type: 'uint8' },
      ]);
    });

    it('streams in batches of batchSize, 64-bit integers as strings', async () => {
      const batches = await collect(
        session,
        'SELECT number AS id, toInt64(number) - 1 AS signed, toUInt8(number % 2) AS odd FROM system.numbers LIMIT 2500',
        1000,
      );
      expect(batches.map((b) => b.length)).toEqual([1000, 1000, 500]);
      expect(batches[0]?.[0]).toEqual({ id: '0', signed: '-1', odd: 0 });
      expect(batches[2]?.at(-1)).toEqual({ id: '2499', signed: '2498', odd: 1 });
    });

    it('streams 50,000 rows with flat memory', async () => {
      let count = 0;
      let sum = 0n;
      let batches = 0;
      const growth = new MemoryGrowth();
      for await (const b of session.source!.stream({
        sql: "SELECT number AS id, concat('user-', toString(number)) AS email, replicate('x', range(20)) AS pad FROM system.numbers LIMIT 50000",
        batchSize: 1000,
      })) {
        batches++;
        count += b.length;
        for (const r of b) sum += BigInt(r.id as string);
        growth.sample();
      }
      expect(count).toBe(50_000);
      expect(batches).toBe(50);
      expect(sum).toBe(BigInt((49_999 * 50_000) / 2));
      expect(growth.peak).toBeLessThan(25 * 1024 * 1024);
    });

    it('streams an empty result as no batches, and stops early without breaking the session', async () => {
      expect(await collect(session, 'SELECT 1 AS x WHERE 0')).toEqual([]);
      for (let i = 0; i < 6; i++) {
        for await (const b of session.source!.stream({
          sql: 'SELECT number FROM system.numbers LIMIT 1000000',
          batchSize: 100,
        })) {
          expect(b.length).toBe(100);
          break;
        }
      }
      expect(await collect(session, 'SELECT 1 AS ok')).toEqual([[{ ok: 1 }]]);
    });

    it('reads hostile strings back exactly', async () => {
      await run('CREATE TABLE hostile (k UInt32, name String, v String) ENGINE = MergeTree ORDER BY k');
      const res = await session.destination!.load({
        mapping: 'm',
        syncId: 's',
        action: 'insert',
        options: { table: 'hostile' },
        records: HOSTILE_NAMES.map((name, i) => rec(String(i), { k: i, name, v: HOSTILE[name] })),
      });
      expect(res.every((r) => r.status === 'ok')).toBe(true);
      const [rows] = await collect(session, 'SELECT name, v FROM hostile ORDER BY k');
      expect(rows).toEqual(HOSTILE_NAMES.map((name) => ({ name, v: HOSTILE[name] })));
    });

    it('reports an error raised after rows were already sent as the server error', async () => {
      const e = await rejection(
        collect(
          session,
          'SELECT number, throwIf(number = 150000) AS boom FROM system.numbers LIMIT 200000',
          1000,
        ),
      );
      expect(e.code).toBe('query_failed');
      expect(e.message).toContain('throwIf');
    });

    it('reports a syntax error and a missing table with the server message', async () => {
      const e = await rejection(session.source!.describe({ sql: 'SELEC 1' }));
      expect(e.code).toBe('query_failed');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain('Syntax error');
      const e2 = await rejection(collect(session, 'SELECT * FROM no_such_table'));
      expect(e2.code).toBe('query_failed');
      expect(e2.message).toMatch(/no_such_table doesn't exist/);
      expect(e2.message).toContain('127.0.0.1');
    });

    it('stops a query at statement_timeout (max_execution_time)', async () => {
      const s = await open(url, { statement_timeout: '1s' });
      try {
        const e = await rejection(
          collect(s, 'SELECT sleep(3) AS x FROM system.numbers LIMIT 3 SETTINGS max_block_size = 1'),
        );
        expect(e.code).toBe('statement_timeout');
        expect(e.retryable).toBe(true);
        expect(await collect(s, 'SELECT 1 AS ok')).toEqual([[{ ok: 1 }]]);
      } finally {
        await s.close();
      }
    });
  });

  describe('destination', () => {
    const load = (action: ActionName, records: LoadRecord[], table = 'crm', key = 'id') =>
      session.destination!.load({ mapping: 'm', syncId: 's', action, options: { table, key }, records });

    beforeAll(async () => {
      await run(`CREATE TABLE crm (
          id UInt64, email String, score Nullable(Float64), seen DateTime, traits String,
          tags Array(String), note Nullable(String), version UInt64 DEFAULT toUInt64(now())
        ) ENGINE = ReplacingMergeTree ORDER BY id`);
      await run('CREATE TABLE logs (id UInt64, msg String) ENGINE = Log');
      await run(
        'CREATE TABLE `odd ``table`` ;--` (`Key` String, `Value;--` String) ENGINE = MergeTree ORDER BY `Key`',
      );
    });

    const table = (sql = 'SELECT id, email, score, seen, traits, tags, note FROM crm FINAL ORDER BY id') =>
      select(sql);

    it('upserts as inserts into a ReplacingMergeTree: the latest version wins under FINAL', async () => {
      await run('TRUNCATE TABLE crm');
      const first = await load('upsert', [
        rec('18446744073709551615', {
          id: '18446744073709551615',
          email: 'zoë@example.com',
          score: 0.5,
          seen: '2024-02-29T23:59:59Z',
          traits: { plan: 'pro', n: [1, 'two', null] },
          tags: ['a', "b'c", '"d"'],
          note: HOSTILE.dropTable,
        }),
        rec('2', {
          id: 2,
          email: 'b@x',
          score: null,
          seen: new Date('2024-01-02T03:04:05Z'),
          traits: '{"from":"text"}',
          tags: '["j"]',
          note: null,
        }),
      ]);
      expect(first).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      await run('OPTIMIZE TABLE crm FINAL'); // the next insert must be a later part for FINAL to pick
      const again = await load('upsert', [
        rec(
          '2',
          { id: 2, email: 'b2@x', score: 1.5, seen: 86_400, traits: '', tags: [], note: 'n' },
          'updated',
        ),
      ]);
      expect(again).toEqual([{ status: 'ok' }]);
      expect(await table()).toEqual([
        { id: '2', email: 'b2@x', score: 1.5, seen: '1970-01-02 00:00:00', traits: '', tags: [], note: 'n' },
        {
          id: '18446744073709551615',
          email: 'zoë@example.com',
          score: 0.5,
          seen: '2024-02-29 23:59:59',
          traits: '{"plan":"pro","n":[1,"two",null]}',
          tags: ['a', "b'c", '"d"'],
          note: HOSTILE.dropTable,
        },
      ]);
    });

    it('takes the key from the record when the fields lack it', async () => {
      await run('TRUNCATE TABLE crm');
      expect(await load('insert', [rec('7', { email: 'k@x' })])).toEqual([{ status: 'ok' }]);
      expect(await select('SELECT id, email FROM crm')).toEqual([{ id: '7', email: 'k@x' }]);
    });

    it('rejects only the bad records of a batch, with the server message, in order', async () => {
      await run('TRUNCATE TABLE crm');
      const records = Array.from({ length: 40 }, (_, i) =>
        rec(String(i), { id: i, email: `u${i}@x`, seen: 0 }),
      );
      records[5] = rec('5', { id: 'five', email: 'bad id' });
      records[23] = rec('23', { id: 23, email: 'e', seen: 'not a time' });
      records[31] = rec('31', { id: 31, email: 'e', tags: 'not an array' });
      const res = await load('upsert', records);
      expect(res).toHaveLength(40);
      const failed = res.flatMap((r, i) =>
        r.status === 'ok' ? [] : [{ i, status: r.status, message: r.message }],
      );
      expect(failed.map((f) => f.i)).toEqual([5, 23, 31]);
      for (const f of failed) {
        expect(f.status).toBe('rejected');
        expect(f.message).toMatch(/Cannot parse|Cannot read/);
        expect(f.message).not.toContain('e.what()');
      }
      expect(await select('SELECT count() AS n FROM crm')).toEqual([{ n: '37' }]);
    });

    it('updates through one mutation per batch, leaving unset columns alone', async () => {
      await run('TRUNCATE TABLE crm');
      await run(
        "INSERT INTO crm (id, email, score, note) VALUES (1, 'a@x', 1, 'keep'), (2, 'b@x', 2, 'keep'), (3, 'c@x', 3, 'keep')",
      );
      const res = await load('update', [
        rec('1', { email: "a2@x'; DROP TABLE crm; --" }, 'updated'),
        rec('2', { id: 2, score: null, note: HOSTILE.newlines, tags: ['t'] }, 'updated'),
        rec('99', { email: 'nobody@x' }, 'updated'),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      // Visible at once: load waited for the mutation.
      expect(await select('SELECT id, email, score, note, tags FROM crm ORDER BY id')).toEqual([
        { id: '1', email: "a2@x'; DROP TABLE crm; --", score: 1, note: 'keep', tags: [] },
        { id: '2', email: 'b@x', score: null, note: HOSTILE.newlines, tags: ['t'] },
        { id: '3', email: 'c@x', score: 3, note: 'keep', tags: [] },
      ]);
    });

    it('rejects an update whose value cannot be cast, and applies the others', async () => {
      await run('TRUNCATE TABLE crm');
      await run("INSERT INTO crm (id, email, score) VALUES (1, 'a@x', 1), (2, 'b@x', 2), (3, 'c@x', 3)");
      const res = await load('update', [
        rec('1', { score: 10 }, 'updated'),
        rec('2', { score: 'lots' }, 'updated'),
        rec('3', { score: 30 }, 'updated'),
      ]);
      expect(res.map((r) => r.status)).toEqual(['ok', 'rejected', 'ok']);
      expect(res[1]).toMatchObject({ message: expect.stringContaining('lots') });
      expect(await select('SELECT id, score FROM crm ORDER BY id')).toEqual([
        { id: '1', score: 10 },
        { id: '2', score: 2 },
        { id: '3', score: 30 },
      ]);
    });

    it('deletes by key through a mutation', async () => {
      await run('TRUNCATE TABLE crm');
      await run("INSERT INTO crm (id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x')");
      const res = await load('delete', [
        rec('3', null, 'deleted'),
        rec('1', null, 'deleted'),
        rec('99', null, 'deleted'),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      expect(await select('SELECT id FROM crm ORDER BY id')).toEqual([{ id: '2' }]);
      const bad = await load('delete', [rec('x', null, 'deleted'), rec('2', null, 'deleted')]);
      expect(bad.map((r) => r.status)).toEqual(['rejected', 'ok']);
      expect(await select('SELECT count() AS n FROM crm')).toEqual([{ n: '0' }]);
    });

    it('mirrors: inserts the new and changed records, deletes the gone ones', async () => {
      await run('TRUNCATE TABLE crm');
      await run("INSERT INTO crm (id, email) VALUES (1, 'a@x'), (2, 'b@x')");
      const res = await load('mirror', [
        rec('1', null, 'deleted'),
        rec('2', { id: 2, email: 'b3@x' }, 'updated'),
        rec('3', { id: 3, email: 'c@x' }, 'added'),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      expect(await select('SELECT id, email FROM crm FINAL ORDER BY id')).toEqual([
        { id: '2', email: 'b3@x' },
        { id: '3', email: 'c@x' },
      ]);
      // A key deleted and re-added later comes back: the mutation only touched older parts.
      expect(await load('mirror', [rec('1', { id: 1, email: 'back@x' }, 'added')])).toEqual([
        { status: 'ok' },
      ]);
      expect(await select('SELECT id, email FROM crm FINAL ORDER BY id')).toEqual([
        { id: '1', email: 'back@x' },
        { id: '2', email: 'b3@x' },
        { id: '3', email: 'c@x' },
      ]);
    });

    it('quotes awkward table and column names', async () => {
      const res = await load(
        'mirror',
        [rec("k'1", { Key: "k'1", 'Value;--': 'v' }), rec('k2', { 'Value;--': 'w' })],
        'odd `table` ;--',
        'Key',
      );
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      expect(await load('mirror', [rec('k2', null, 'deleted')], 'odd `table` ;--', 'Key')).toEqual([
        { status: 'ok' },
      ]);
      expect(await select('SELECT * FROM `odd ``table`` ;--`')).toEqual([{ Key: "k'1", 'Value;--': 'v' }]);
    });

    it('rejects a change its action cannot carry', async () => {
      const res = await load('insert', [rec('1', null, 'deleted')]);
      expect(res).toEqual([{ status: 'rejected', code: 'unsupported_change', message: expect.any(String) }]);
    });

    it('fails a whole batch on a missing table or column, and on an engine without mutations', async () => {
      const e = await rejection(load('upsert', [rec('1', { id: 1 })], 'nope'));
      expect(e.code).toBe('table_not_found');
      const e2 = await rejection(load('upsert', [rec('1', { id: 1, nope: 1 })]));
      expect(e2.code).toBe('column_not_found');
      const e3 = await rejection(load('delete', [rec('1', null, 'deleted')], 'logs'));
      expect(e3.code).toBe('query_failed');
      expect(e3.hint).toContain('MergeTree');
    });

    it('checks the table and columns without writing', async () => {
      const check = session.destination!.check!.bind(session.destination);
      expect(
        await check({ action: 'upsert', options: { table: 'crm', key: 'id' }, fields: ['id', 'email'] }),
      ).toEqual([]);
      expect(
        await check({ action: 'upsert', options: { table: 'nope', key: 'id' }, fields: [] }),
      ).toMatchObject([{ code: 'table_not_found' }]);
      expect(
        await check({ action: 'mirror', options: { table: 'crm', key: 'ID' }, fields: ['Email'] }),
      ).toEqual([
        { code: 'key_column_not_found', message: expect.any(String), hint: 'did you mean id?' },
        { code: 'column_not_found', message: expect.any(String), hint: 'did you mean email?' },
      ]);
    });
  });

  describe('connector', () => {
    it('runs several statements one at a time, splitting outside quotes', async () => {
      const sql = session.sql!;
      await sql.execute({
        sql: `CREATE TABLE members (segment UInt32, id String) ENGINE = MergeTree ORDER BY id;
INSERT INTO members VALUES (1, 'a;b'), (1, 'it\\'s; fine');
-- a comment; with a semicolon
INSERT INTO members VALUES (2, 'c');`,
      });
      expect(await sql.query!({ sql: 'SELECT segment, id FROM members ORDER BY id' })).toEqual([
        { segment: 1, id: 'a;b' },
        { segment: 2, id: 'c' },
        { segment: 1, id: "it's; fine" },
      ]);
      await sql.execute({ sql: 'ALTER TABLE members DELETE WHERE segment = 1;' });
    });

    it('splits rendered hostile values correctly: each statement lands, every value intact', async () => {
      const sql = session.sql!;
      await sql.execute({
        sql: 'CREATE TABLE rendered (k UInt32, a String, b String) ENGINE = MergeTree ORDER BY k',
      });
      const text = HOSTILE_NAMES.map(
        (name, i) =>
          `INSERT INTO rendered VALUES (${i}, '${dialect.escapeInQuote(HOSTILE[name], "'")}', ${dialect.literal(HOSTILE[name])}); -- ${i};`,
      ).join('\n');
      await sql.execute({ sql: text });
      const rows = await sql.query!({ sql: 'SELECT k, a, b FROM rendered ORDER BY k' });
      expect(rows).toEqual(HOSTILE_NAMES.map((name, k) => ({ k, a: HOSTILE[name], b: HOSTILE[name] })));
    });

    it('stops at the first failing statement with the server message', async () => {
      const e = await rejection(
        session.sql!.execute({ sql: 'SELECT 1; SELECT * FROM missing_table; SELECT 2' }),
      );
      expect(e.code).toBe('query_failed');
      expect(e.message).toContain('missing_table');
    });
  });

  describe('connection failures', () => {
    it('says the address when nothing listens there', async () => {
      const [port] = await freePorts(1);
      const e = await rejection(open(`clickhouse://default:hunter22@127.0.0.1:${port}/default`));
      expect(e.code).toBe('connection_failed');
      expect(e.retryable).toBe(true);
      expect(e.message).toContain(`127.0.0.1:${port}`);
      expect(e.hint).toContain(`127.0.0.1:${port}`);
      expect(`${e.message} ${e.hint}`).not.toContain('hunter22');
    });

    it('reports a refused login without the password', async () => {
      const e = await rejection(open(userUrl(httpUrl, 'default', 'hunter22')));
      expect(e.code).toBe('auth_failed');
      expect(e.retryable).toBe(false);
      expect(`${e.message} ${e.hint}`).not.toContain('hunter22');
      const e2 = await rejection(open(userUrl(httpUrl, 'nobody_here')));
      expect(e2.code).toBe('auth_failed');
    });

    it('reports a missing database at open', async () => {
      const u = new URL(httpUrl);
      const e = await rejection(open(`clickhouse://default@${u.host}/no_such_db`));
      expect(e.code).toBe('connection_failed');
      expect(e.message).toContain('no_such_db');
    });
  });
});
