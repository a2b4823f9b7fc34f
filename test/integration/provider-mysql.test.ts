// The mysql provider against a real MariaDB server: awkward types read back exactly, JSON columns
// decoded where the server says they are JSON, bulk loads with per-record failures, check(), the
// connector, and every way a connection can fail.

import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialect } from '../../providers/mysql/dialect.js';
import { mysqlDatetime, provider } from '../../providers/mysql/index.js';
import type { LoadRecord, Row, Session } from '../../providers/sdk.js';
import { MemoryGrowth } from '../fixtures/memory.js';
import { rejection } from '../fixtures/provider-errors.js';
import { drainSlowly, readUntilKilled } from '../fixtures/streams.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { freePorts } from '../harness/process.js';
import { destinationContract } from './destination-contract.js';

const base = serverUrl('mariadb');

async function open(url: string, extra: { statement_timeout?: string } = {}): Promise<Session> {
  return provider.open({
    settings: { type: 'mysql', url, ...extra },
    configDir: '/nonexistent',
    address: 'source.my',
  });
}

async function collect(session: Session, sql: string, batchSize = 1000): Promise<Row[][]> {
  const batches: Row[][] = [];
  for await (const b of session.source!.stream({ sql, batchSize })) batches.push(b.map((r) => ({ ...r })));
  return batches;
}

function rec(
  key: string,
  fields: Record<string, unknown> | null,
  change: LoadRecord['change'] = 'added',
): LoadRecord {
  return { change, key, idempotencyKey: `i-${key}`, fields };
}

describe('mysqlDatetime', () => {
  it('turns ISO-8601 into DATETIME text, converting a zone to UTC and keeping the fraction', () => {
    expect(mysqlDatetime('2024-02-29T23:59:59.123456Z')).toBe('2024-02-29 23:59:59.123456');
    expect(mysqlDatetime('2024-03-01T01:29:59+05:30')).toBe('2024-02-29 19:59:59');
    expect(mysqlDatetime('2024-03-01T01:29:59-0100')).toBe('2024-03-01 02:29:59');
    expect(mysqlDatetime('2024-02-29T23:59:59.5')).toBe('2024-02-29 23:59:59.5');
    expect(mysqlDatetime('2024-02-29 23:59:59')).toBe('2024-02-29 23:59:59');
    expect(mysqlDatetime('yesterday')).toBe('yesterday');
  });
});

describe.skipIf(!base)('mysql provider (MariaDB)', () => {
  let url: string;
  let admin: mysql.Connection;
  let session: Session;

  beforeAll(async () => {
    url = await freshDatabase('mariadb', 'provider_my');
    admin = await mysql.createConnection({ uri: url, multipleStatements: true });
    session = await open(url);
  });
  afterAll(async () => {
    await session?.close();
    await admin?.end();
  });

  describe('source', () => {
    beforeAll(async () => {
      await admin.query(`
        CREATE TABLE awkward (
          id INT PRIMARY KEY, big BIGINT, ubig BIGINT UNSIGNED, num DECIMAL(30,10), dt DATETIME(6), d DATE,
          doc JSON, txt LONGTEXT, name VARCHAR(200), flag TINYINT(1), f DOUBLE, b VARBINARY(10));
        INSERT INTO awkward VALUES
          (1, 9007199254740993, 18446744073709551615, 12345678901234567890.0123456789, '2024-02-29 23:59:59.123456',
           '2024-02-29', '{"a":{"b":[1,2,{"c":null}]},"s":"ünï"}', '{"not":"json column"}',
           'Zoë — 日本語 🎉 O''Reilly \\\\ "x"', 1, 0.5, X'00ff'),
          (2, -9223372036854775808, 0, -0.0000000001, '1970-01-01 00:00:00', NULL, '[]', '', '', 0, NULL, NULL),
          (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);`);
    });

    it('reads awkward types exactly', async () => {
      const [rows] = await collect(session, 'SELECT * FROM awkward ORDER BY id');
      expect(rows).toEqual([
        {
          id: 1,
          big: '9007199254740993',
          ubig: '18446744073709551615',
          num: '12345678901234567890.0123456789',
          dt: '2024-02-29 23:59:59.123456',
          d: '2024-02-29',
          doc: { a: { b: [1, 2, { c: null }] }, s: 'ünï' },
          txt: '{"not":"json column"}',
          name: 'Zoë — 日本語 🎉 O\'Reilly \\ "x"',
          flag: 1,
          f: 0.5,
          b: Buffer.from([0, 255]),
        },
        {
          id: 2,
          big: '-9223372036854775808',
          ubig: '0',
          num: '-0.0000000001',
          dt: '1970-01-01 00:00:00.000000',
          d: null,
          doc: [],
          txt: '',
          name: '',
          flag: 0,
          f: null,
          b: null,
        },
        {
          id: 3,
          big: null,
          ubig: null,
          num: null,
          dt: null,
          d: null,
          doc: null,
          txt: null,
          name: null,
          flag: null,
          f: null,
          b: null,
        },
      ]);
    });

    it('decodes the result of a JSON function, not a JSON-looking string', async () => {
      const [rows] = await collect(session, `SELECT JSON_OBJECT('k', 1) AS obj, '{"k":1}' AS str`);
      expect(rows).toEqual([{ obj: { k: 1 }, str: '{"k":1}' }]);
    });

    it('describes a query without running it', async () => {
      const started = Date.now();
      const cols = await session.source!.describe({
        sql: 'SELECT id, big, ubig, num, dt, doc, txt, name, b, SLEEP(5) AS slow FROM awkward;',
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(cols).toEqual([
        { name: 'id', type: 'int' },
        { name: 'big', type: 'bigint' },
        { name: 'ubig', type: 'bigint unsigned' },
        { name: 'num', type: 'decimal' },
        { name: 'dt', type: 'datetime' },
        { name: 'doc', type: 'json' },
        { name: 'txt', type: 'text' },
        { name: 'name', type: 'varchar' },
        { name: 'b', type: 'varbinary' },
        { name: 'slow', type: 'int' },
      ]);
    });

    it('streams in batches of batchSize', async () => {
      const batches = await collect(session, 'SELECT seq AS id FROM seq_1_to_2500', 1000);
      expect(batches.map((b) => b.length)).toEqual([1000, 1000, 500]);
      expect(batches[2]?.at(-1)).toEqual({ id: '2500' });
    });

    it('streams an empty result as no batches', async () => {
      expect(await collect(session, 'SELECT 1 AS x FROM DUAL WHERE false')).toEqual([]);
    });

    it('returns to a working pool when the caller stops early', async () => {
      for (let i = 0; i < 6; i++) {
        for await (const b of session.source!.stream({
          sql: 'SELECT seq FROM seq_1_to_1000000',
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
        sql: "SELECT seq AS id, REPEAT('x', 200) AS pad FROM seq_1_to_300000",
        batchSize: 2000,
      })) {
        count += b.length;
        growth.sample();
      }
      expect(count).toBe(300_000);
      // The whole result is ~100 MB as JS objects.
      expect(growth.peak).toBeLessThan(25 * 1024 * 1024);
    });

    it('reports a syntax error with the server message', async () => {
      const e = await rejection(session.source!.describe({ sql: 'SELEC 1' }));
      expect(e.code).toBe('query_failed');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain("near 'SELEC 1'");
      const e2 = await rejection(collect(session, 'SELECT * FROM no_such_table'));
      expect(e2.code).toBe('query_failed');
      expect(e2.message).toMatch(/no_such_table' doesn't exist/);
    });

    it('stops a query at statement_timeout', async () => {
      const s = await open(url, { statement_timeout: '200ms' });
      try {
        const e = await rejection(collect(s, 'SELECT SLEEP(3)'));
        expect(e.code).toBe('statement_timeout');
        expect(e.retryable).toBe(true);
        expect(e.message).toContain('longer than statement_timeout (200 ms)');
        const [rows] = await collect(s, 'SELECT 1 AS ok');
        expect(rows).toEqual([{ ok: 1 }]);
        // Statements other than a stream keep the server-side limit.
        const e2 = await rejection(s.sql!.query!({ sql: 'SELECT SLEEP(3)' }));
        expect(e2.code).toBe('statement_timeout');
        expect(e2.message).toContain('max_statement_time exceeded');
        // The timeout bounds each batch, not the whole stream: a slow consumer is not a slow query.
        const slow = await drainSlowly(
          s.source!.stream({ sql: 'SELECT seq FROM seq_1_to_5000', batchSize: 500 }),
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
        const marker = `kill_me_${Date.now()}`;
        const e = await rejection(
          readUntilKilled(
            s.source!.stream({ sql: `SELECT seq, '${marker}' AS m FROM seq_1_to_5000000`, batchSize: 500 }),
            500,
            async () => {
              const [procs] = await admin.query<mysql.RowDataPacket[]>(
                'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()',
                [`%${marker}' AS m%`],
              );
              expect(procs).toHaveLength(1);
              await admin.query(`KILL CONNECTION ${Number(procs[0]!.id)}`);
            },
          ),
        );
        expect(e.retryable).toBe(true);
        expect(e.code).toBe('connection_lost');
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
          id BIGINT PRIMARY KEY, email VARCHAR(100) NOT NULL CHECK (email LIKE '%@%'), score DECIMAL(30,10),
          seen DATETIME(6), stamp TIMESTAMP(6) NULL, traits JSON, note TEXT);
        CREATE TABLE plain (id BIGINT, email TEXT);
        CREATE TABLE \`Odd Table\` (\`Key\` VARCHAR(50) PRIMARY KEY, \`Value;--\` TEXT);`);
    });

    const load = (action: string, records: LoadRecord[], table = 'crm', key = 'id') =>
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
          stamp: '2024-03-01T01:29:59.5+05:30',
          traits: { plan: 'pro', nested: { list: [1, 'two', null] } },
          note: 'Zoë — 日本語 🎉 O\'Reilly \\ "x" \0 \x1a',
        }),
        rec('2', { id: 2, email: 'b@x', score: null, seen: null, traits: '{"from":"text"}', note: null }),
        rec('3', { id: 3, email: 'c@x', traits: 'plain string' }),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      expect(await table('SELECT id, email, score, seen, stamp, traits, note FROM crm ORDER BY id')).toEqual([
        { id: '2', email: 'b@x', score: null, seen: null, stamp: null, traits: { from: 'text' }, note: null },
        { id: '3', email: 'c@x', score: null, seen: null, stamp: null, traits: 'plain string', note: null },
        {
          id: '9007199254740993',
          email: 'zoë@example.com',
          score: '12345678901234567890.0123456789',
          seen: '2024-02-29 23:59:59.123456',
          // The read session's time zone is the server's (UTC on the test server).
          stamp: expect.stringMatching(/^2024-02-29 \d\d:59:59\.500000$/),
          traits: { plan: 'pro', nested: { list: [1, 'two', null] } },
          note: 'Zoë — 日本語 🎉 O\'Reilly \\ "x" \0 \x1a',
        },
      ]);
      const [utc] = await admin.query<mysql.RowDataPacket[]>(
        "SELECT DATE_FORMAT(CONVERT_TZ(stamp, @@session.time_zone, '+00:00'), '%Y-%m-%d %H:%i:%s.%f') AS s FROM crm WHERE id = 9007199254740993",
      );
      expect(utc[0]?.s).toBe('2024-02-29 19:59:59.500000');
      const again = await load('upsert', [
        rec('2', { id: 2, email: 'b2@x', score: '1.5', note: 'n' }, 'updated'),
      ]);
      expect(again).toEqual([{ status: 'ok' }]);
      expect((await table('SELECT email, score, note FROM crm WHERE id = 2'))[0]).toEqual({
        email: 'b2@x',
        score: '1.5000000000',
        note: 'n',
      });
    });

    it('splits a large batch into statements under max_allowed_packet', async () => {
      await admin.query('TRUNCATE crm');
      const note = `${'é'.repeat(1500)}'\\`;
      const records = Array.from({ length: 3000 }, (_, i) =>
        rec(String(i), { id: i, email: `u${i}@x`, note }),
      );
      const res = await load('upsert', records);
      expect(res.every((r) => r.status === 'ok')).toBe(true);
      const [n] = await admin.query<mysql.RowDataPacket[]>(
        'SELECT COUNT(*) AS n, MIN(note = ?) AS same FROM crm',
        [note],
      );
      expect(n[0]).toEqual({ n: 3000, same: 1 });
      const up = await load(
        'update',
        records.slice(0, 2000).map((r) => ({ ...r, change: 'updated' as const })),
      );
      expect(up.every((r) => r.status === 'ok')).toBe(true);
    });

    it('rejects only the records that break a constraint, with the server message, in order', async () => {
      await admin.query('TRUNCATE crm');
      const records = Array.from({ length: 50 }, (_, i) =>
        rec(String(i), { id: i, email: i === 7 || i === 31 ? 'no-at-sign' : `u${i}@x` }),
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
          message: expect.stringContaining('CONSTRAINT `crm.email` failed'),
        },
        { i: 20, status: 'rejected', code: 'not_null_violation', message: "Column 'email' cannot be null" },
        { i: 31, status: 'rejected', code: 'check_violation', message: expect.stringContaining('crm.email') },
      ]);
      const [n] = await admin.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM crm');
      expect(n[0]?.n).toBe(47);
    });

    it('rejects a value the column type refuses instead of truncating it', async () => {
      await admin.query('TRUNCATE crm');
      const res = await load('upsert', [
        rec('1', { id: 1, email: 'a@x', seen: 'not a time' }),
        rec('2', { id: 2, email: 'x'.repeat(101) }),
        rec('3', { id: 3, email: 'c@x', score: '1e40' }),
        rec('4', { id: 4, email: 'd@x' }),
      ]);
      expect(res.map((r) => (r.status === 'rejected' ? r.code : r.status))).toEqual([
        'invalid_value',
        'value_too_long',
        'value_out_of_range',
        'ok',
      ]);
    });

    it('inserts, and rejects a duplicate key', async () => {
      await admin.query('TRUNCATE crm');
      expect(await load('insert', [rec('1', { id: 1, email: 'a@x' })])).toEqual([{ status: 'ok' }]);
      const res = await load('insert', [
        rec('1', { id: 1, email: 'again@x' }),
        rec('2', { id: 2, email: 'b@x' }),
      ]);
      expect(res).toEqual([
        { status: 'rejected', code: 'unique_violation', message: "Duplicate entry '1' for key 'PRIMARY'" },
        { status: 'ok' },
      ]);
    });

    it('updates existing rows and deletes by key', async () => {
      await admin.query(
        "TRUNCATE crm; INSERT INTO crm (id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x')",
      );
      const up = await load('update', [
        rec('1', { email: 'a2@x' }, 'updated'),
        rec('2', { id: 2, email: 'b2@x', note: 'x', traits: { t: 1 } }, 'updated'),
      ]);
      expect(up).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      const del = await load('delete', [rec('3', null, 'deleted'), rec('99', null, 'deleted')]);
      expect(del).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      expect(await table('SELECT id, email, note, traits FROM crm ORDER BY id')).toEqual([
        { id: '1', email: 'a2@x', note: null, traits: null },
        { id: '2', email: 'b2@x', note: 'x', traits: { t: 1 } },
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

    it('quotes hostile table and column names and values', async () => {
      const value = "v'); DROP TABLE crm; -- \\' \\";
      const res = await load('upsert', [rec("k'1", { 'Value;--': value })], 'Odd Table', 'Key');
      expect(res).toEqual([{ status: 'ok' }]);
      expect(await table('SELECT * FROM `Odd Table`')).toEqual([{ Key: "k'1", 'Value;--': value }]);
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
        expect.objectContaining({ code: 'key_not_unique', hint: 'ALTER TABLE `plain` ADD UNIQUE (`id`)' }),
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
        sql: "CREATE TABLE seg (id VARCHAR(10)); INSERT INTO seg VALUES ('a'), ('b'); INSERT INTO seg VALUES ('c');",
      });
      expect(res.rowsAffected).toBe(3);
      expect(await session.sql!.query!({ sql: 'SELECT id FROM seg ORDER BY id' })).toEqual([
        { id: 'a' },
        { id: 'b' },
        { id: 'c' },
      ]);
      // Reads run one statement at a time.
      const e = await rejection(session.sql!.query!({ sql: 'SELECT 1; SELECT 2' }));
      expect(e.code).toBe('query_failed');
    });
  });

  describe('connection failures', () => {
    it('says the server is unreachable', async () => {
      const [port] = await freePorts(1);
      const e = await rejection(open(`mysql://root@127.0.0.1:${port}/mysql`));
      expect(e.code).toBe('connection_failed');
      expect(e.retryable).toBe(true);
      expect(e.hint).toMatch(/running/);
      expect(e.message).toContain(`127.0.0.1:${port}/mysql`);
    });

    it('says the database does not exist', async () => {
      const u = new URL(url);
      u.pathname = '/no_such_db';
      const e = await rejection(open(u.toString()));
      expect(e.code).toBe('connection_failed');
      expect(e.message).toContain("Unknown database 'no_such_db'");
      expect(e.hint).toMatch(/database name/);
    });

    it('says the password is wrong, without echoing it', async () => {
      await admin.query("CREATE USER IF NOT EXISTS 'bf_pw_user'@'%' IDENTIFIED BY 'right-password'");
      await admin.query("GRANT ALL ON *.* TO 'bf_pw_user'@'%'");
      const u = new URL(url);
      u.username = 'bf_pw_user';
      u.password = 'wrong-s3cret';
      const e = await rejection(open(u.toString()));
      expect(e.code).toBe('auth_failed');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain("Access denied for user 'bf_pw_user'");
      expect(`${e.message} ${e.hint}`).not.toContain('wrong-s3cret');
      u.password = 'right-password';
      const ok = await open(u.toString());
      await ok.close();
    });

    it('refuses a URL that is not mysql', async () => {
      await expect(open('postgres://x@y/z')).rejects.toThrow(/must start with mysql/);
    });
  });

  describe('shared contract', () => {
    let contractUrl: string;
    let contractAdmin: mysql.Connection;
    beforeAll(async () => {
      contractUrl = await freshDatabase('mariadb', 'contract_my');
      contractAdmin = await mysql.createConnection({
        uri: contractUrl,
        supportBigNumbers: true,
        bigNumberStrings: true,
      });
      // The suite reads its tables back ORDER BY id and expects byte order (as SQLite and a C-collated
      // PostgreSQL give); MariaDB's default utf8mb4_general_ci sorts 'own' before '["k",1]'.
      await contractAdmin.query('ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');
    });
    afterAll(async () => {
      await contractAdmin?.end();
    });
    destinationContract('mysql', {
      name: 'mysql',
      dialect,
      open: () => open(contractUrl),
      exec: async (sql) => {
        await contractAdmin.query(sql);
      },
      query: async (sql) => {
        const [rows] = await contractAdmin.query<mysql.RowDataPacket[]>(sql);
        return rows.map((r) => ({ ...r }));
      },
    });
  });
});
