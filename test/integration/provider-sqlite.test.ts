// The sqlite provider on real database files: exact values out of the source, batches, errors
// with SQLite's own message, the destination contract, check(), the connector, and opening.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifests } from '../../providers/manifests.js';
import type { LoadRecord, RawRows, Row, Session } from '../../providers/sdk.js';
import { ProviderError, UserError } from '../../providers/sdk.js';
import { dialect } from '../../providers/sqlite/dialect.js';
import { provider } from '../../providers/sqlite/index.js';
import { destinationContract } from './destination-contract.js';

const root = mkdtempSync(join(tmpdir(), 'backflow-sqlite-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A new database file under the test directory, with `sql` run in it. */
function database(name: string, sql = ''): { file: string; db: Database.Database } {
  const file = join(root, name);
  const db = new Database(file);
  if (sql) db.exec(sql);
  return { file, db };
}

function open(path: string, address = 'source.warehouse'): Promise<Session> {
  return provider.open({ settings: { type: 'sqlite', path }, configDir: root, address });
}

async function collect(session: Session, sql: string, batchSize = 1000): Promise<Row[][]> {
  const batches: Row[][] = [];
  for await (const b of session.source!.stream({ sql, batchSize })) batches.push([...b]);
  return batches;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
}

it('has the sqlite manifest', () => {
  expect(provider.manifest).toBe(manifests.sqlite);
});

describe('source', () => {
  let session: Session;
  beforeAll(async () => {
    const { db } = database(
      'source.db',
      `CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, amount REAL, name VARCHAR(20), data BLOB, doc TEXT, n NUMERIC);
       INSERT INTO t VALUES
         (1, 9007199254740993, 1.5, 'Zoë', x'00ff10', '{"a":[1,2]}', 12),
         (2, -9223372036854775808, NULL, NULL, NULL, NULL, NULL),
         (3, 9007199254740991, 0.1, '', x'', 'text', 1.25);
       CREATE TABLE many (i INTEGER PRIMARY KEY, s TEXT);
       WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10000)
       INSERT INTO many SELECT i, 'row ' || i FROM c;`,
    );
    db.close();
    session = await open('source.db');
  });
  afterAll(() => session.close());

  it('describes columns and declared types without running the query', async () => {
    // The first row would fail at run time (abs() of the smallest integer overflows): describe does not run it.
    const cols = await session.source!.describe({
      sql: 'SELECT id, big, name, data, abs(-9223372036854775807 - 1) AS boom, 1 + 1 AS two FROM t',
    });
    expect(cols).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'big', type: 'integer' },
      { name: 'name', type: 'varchar(20)' },
      { name: 'data', type: 'blob' },
      { name: 'boom', type: '' },
      { name: 'two', type: '' },
    ]);
  });

  it('reads integers beyond 2^53 exactly, NULLs, reals and blobs', async () => {
    const [rows] = await collect(session, 'SELECT * FROM t ORDER BY id');
    expect(rows).toEqual([
      { id: 1, big: '9007199254740993', amount: 1.5, name: 'Zoë', data: 'AP8Q', doc: '{"a":[1,2]}', n: 12 },
      { id: 2, big: '-9223372036854775808', amount: null, name: null, data: null, doc: null, n: null },
      { id: 3, big: 9007199254740991, amount: 0.1, name: '', data: '', doc: 'text', n: 1.25 },
    ]);
  });

  it('streams 10,000 rows in batches of batchSize, in order', async () => {
    const batches = await collect(session, 'SELECT i, s FROM many ORDER BY i', 3000);
    expect(batches.map((b) => b.length)).toEqual([3000, 3000, 3000, 1000]);
    const all = batches.flat();
    expect(all[0]).toEqual({ i: 1, s: 'row 1' });
    expect(all[9999]).toEqual({ i: 10000, s: 'row 10000' });
    expect(new Set(all.map((r) => r.i)).size).toBe(10000);
    expect(await collect(session, 'SELECT * FROM many WHERE i < 0')).toEqual([]);
  });

  it('lets the event loop run between batches and closes the cursor when the caller stops', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    let seen = 0;
    for await (const batch of session.source!.stream({ sql: 'SELECT * FROM many', batchSize: 100 })) {
      seen += batch.length;
      if (seen >= 5000) break;
    }
    clearInterval(timer);
    expect(seen).toBe(5000);
    expect(ticks).toBeGreaterThan(0);
    // The connection is free again: a busy cursor would make this throw.
    expect(await session.source!.describe({ sql: 'SELECT 1 AS one' })).toEqual([{ name: 'one', type: '' }]);
  });

  it('stops at an aborted signal', async () => {
    const controller = new AbortController();
    const batches: number[] = [];
    const e = await failure(
      (async () => {
        for await (const b of session.source!.stream({
          sql: 'SELECT * FROM many',
          batchSize: 1000,
          signal: controller.signal,
        })) {
          batches.push(b.length);
          controller.abort();
        }
      })(),
    );
    expect(batches).toEqual([1000]);
    expect((e as Error).name).toBe('AbortError');
    expect(await session.source!.describe({ sql: 'SELECT 1 AS one' })).toHaveLength(1);
  });

  it('reports a failing query with SQLite’s message', async () => {
    const e = await failure(session.source!.describe({ sql: 'SELECT nope FROM t' }));
    expect(e).toBeInstanceOf(ProviderError);
    expect(e).toMatchObject({
      code: 'query_failed',
      retryable: false,
      message: expect.stringContaining('no such column: nope'),
    });
    expect((e as Error).message).toContain('source.warehouse');
    const syntax = await failure(collect(session, 'SELEC 1'));
    expect(syntax).toMatchObject({
      code: 'query_failed',
      message: expect.stringContaining('near "SELEC": syntax error'),
    });
    const notSelect = await failure(session.source!.describe({ sql: 'DELETE FROM t' }));
    expect(notSelect).toMatchObject({
      code: 'query_failed',
      message: expect.stringContaining('returns no rows'),
    });
    expect(await collect(session, 'SELECT count(*) AS n FROM t')).toEqual([[{ n: 3 }]]);
  });

  it('streams raw rows that decode exactly as stream does, each fingerprint telling values and types apart', async () => {
    const sql = `SELECT * FROM t ORDER BY id`;
    const [expected] = await collect(session, sql);
    const raw: RawRows[] = [];
    for await (const b of session.source!.streamRaw!({ sql, batchSize: 2 })) raw.push(b);
    expect(raw.map((b) => b.length)).toEqual([2, 1]);
    const rows = raw.flatMap((b) => Array.from({ length: b.length }, (_, i) => b.row(i)));
    expect(rows).toEqual(expected);
    expect(rows.map((r) => Object.keys(r))).toEqual(expected!.map((r) => Object.keys(r)));
    expect(raw[0]!.pick(1, ['big', 'nope', 'id'])).toEqual({ big: '-9223372036854775808', id: 2 });
    // The same row text, the same fingerprint; each value and storage class, its own.
    const fp = async (q: string) => {
      const out: string[] = [];
      for await (const b of session.source!.streamRaw!({ sql: q, batchSize: 100 }))
        for (let i = 0; i < b.length; i++) out.push(b.fingerprint(i));
      return out;
    };
    expect(await fp(sql)).toEqual(await fp(sql));
    const values = `SELECT v FROM (SELECT NULL AS v UNION ALL SELECT 'N' UNION ALL SELECT '' UNION ALL SELECT 1
      UNION ALL SELECT '1' UNION ALL SELECT 1.0 UNION ALL SELECT 'r1' UNION ALL SELECT x'01' UNION ALL SELECT 'x01'
      UNION ALL SELECT 'a' || char(9) || 'b' UNION ALL SELECT '"a"' UNION ALL SELECT 9223372036854775807)`;
    expect(new Set(await fp(values)).size).toBe(12);
    // Two columns are not one with a tab in it.
    const [two] = await fp(`SELECT 'a' AS x, 'b' AS y`);
    const [one] = await fp(`SELECT 'a' || char(9) || 'b' AS x`);
    expect(two).not.toBe(one);
  });

  it('keeps the later of two columns with the same name in raw rows, as stream does', async () => {
    const sql = `SELECT 1 AS a, 'x' AS b, 2 AS a`;
    const [expected] = await collect(session, sql);
    for await (const b of session.source!.streamRaw!({ sql, batchSize: 10 })) {
      expect(b.row(0)).toEqual(expected![0]);
      expect(Object.keys(b.row(0))).toEqual(Object.keys(expected![0]!));
      expect(b.pick(0, ['a'])).toEqual({ a: expected![0]!.a });
    }
  });

  it('reports a failing query in streamRaw as stream does', async () => {
    const e = await failure(
      (async () => {
        for await (const _ of session.source!.streamRaw!({
          sql: 'SELECT abs(big) FROM t ORDER BY id',
          batchSize: 1,
        }));
      })(),
    );
    expect(e).toMatchObject({ code: 'query_failed', message: expect.stringContaining('integer overflow') });
  });

  it('reports an error raised while stepping through rows', async () => {
    const e = await failure(collect(session, 'SELECT abs(big) FROM t ORDER BY id', 1));
    expect(e).toMatchObject({ code: 'query_failed', message: expect.stringContaining('integer overflow') });
  });
});

describe('opening', () => {
  it('resolves a relative path against the config directory', async () => {
    mkdirSync(join(root, 'sub'), { recursive: true });
    database('sub/rel.db', 'CREATE TABLE x (a)').db.close();
    const s = await open('sub/rel.db');
    expect(await s.source!.describe({ sql: 'SELECT a FROM x' })).toEqual([{ name: 'a', type: '' }]);
    await s.close();
    await s.close();
  });

  it('says which address and path are wrong, and what to do', async () => {
    const noDir = await failure(open('missing-dir/data.db', 'destination.crm'));
    expect(noDir).toBeInstanceOf(UserError);
    expect((noDir as Error).message).toBe(
      `destination.crm: the directory ${join(root, 'missing-dir')} of the SQLite file does not exist`,
    );
    expect((noDir as UserError).hint).toContain('missing-dir/data.db');

    const noFile = await failure(open('nothing-here.db'));
    expect(noFile).toBeInstanceOf(UserError);
    expect((noFile as Error).message).toContain(
      `source.warehouse: the SQLite file ${join(root, 'nothing-here.db')} does not exist`,
    );

    writeFileSync(join(root, 'text.db'), 'just text, not a database '.repeat(100));
    const notDb = await failure(open('text.db'));
    expect(notDb).toBeInstanceOf(UserError);
    expect((notDb as Error).message).toMatch(/text\.db is not a SQLite database/);

    const noPath = await failure(
      provider.open({ settings: { type: 'sqlite' }, configDir: root, address: 'connector.x' }),
    );
    expect(noPath).toMatchObject({ message: 'connector.x: a sqlite connection needs `path`' });
  });

  it('opens a read-only file for reading', async () => {
    const { file, db } = database('ro.db', 'CREATE TABLE r (a); INSERT INTO r VALUES (1)');
    db.close();
    chmodSync(file, 0o444);
    const s = await open('ro.db');
    expect(await collect(s, 'SELECT a FROM r')).toEqual([[{ a: 1 }]]);
    await s.close();
  });
});

describe('destination', () => {
  const { file, db } = database('dest.db');
  afterAll(() => db.close());

  destinationContract('sqlite', {
    name: 'sqlite',
    dialect,
    open: () => open(file, 'destination.crm'),
    exec: async (sql) => {
      db.exec(sql);
    },
    query: async (sql) => db.prepare(sql).safeIntegers(true).all() as Row[],
  });

  describe('beyond the contract', () => {
    let session: Session;
    const rec = (
      key: string,
      fields: Record<string, unknown> | null,
      change: LoadRecord['change'] = 'added',
    ): LoadRecord => ({
      change,
      key,
      idempotencyKey: key,
      fields,
    });
    beforeAll(async () => {
      db.exec(`CREATE TABLE typed (id INTEGER PRIMARY KEY, flag INTEGER, label TEXT, raw BLOB, at TEXT, ref INTEGER REFERENCES parent (id));
               CREATE TABLE parent (id INTEGER PRIMARY KEY);
               INSERT INTO parent VALUES (1);
               CREATE TABLE strict_t (id TEXT PRIMARY KEY, n INTEGER) STRICT;
               CREATE TABLE guarded (id TEXT PRIMARY KEY, v TEXT);
               CREATE TRIGGER no_bad BEFORE INSERT ON guarded WHEN NEW.v = 'bad' BEGIN SELECT RAISE(ABORT, 'bad values are refused'); END;
               CREATE TABLE audit (id TEXT);
               CREATE TABLE partial (id TEXT PRIMARY KEY, v TEXT);
               CREATE TRIGGER partial_fail AFTER INSERT ON partial BEGIN
                 INSERT INTO audit VALUES (NEW.id);
                 SELECT RAISE(FAIL, 'fails after writing') WHERE NEW.v = 'bad';
               END;
               CREATE TABLE undo_all (id TEXT PRIMARY KEY, v TEXT);
               CREATE TRIGGER undo_all_rollback BEFORE INSERT ON undo_all WHEN NEW.v = 'bad' BEGIN
                 SELECT RAISE(ROLLBACK, 'rolls back the transaction');
               END;
               CREATE TABLE uniq (id TEXT, email TEXT);
               CREATE UNIQUE INDEX uniq_id ON uniq (id);`);
      session = await open(file, 'destination.crm');
    });
    afterAll(() => session.close());

    const load = (action: 'upsert' | 'insert', table: string, records: LoadRecord[]) =>
      session.destination!.load({
        mapping: 'm',
        syncId: 's',
        action,
        options: { table, key: 'id' },
        records,
      });

    it('binds booleans, integers, dates and bytes as SQLite values', async () => {
      const res = await load('upsert', 'typed', [
        rec('1', {
          flag: true,
          label: 42,
          raw: Buffer.from([0, 1, 255]),
          at: new Date('2024-02-29T23:59:59.123Z'),
          ref: 1,
        }),
        rec('2', { flag: false, label: 1.5, raw: new Uint8Array([7]), at: null }),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      expect(
        db
          .prepare('SELECT id, flag, label, typeof(label) AS lt, hex(raw) AS raw, at FROM typed ORDER BY id')
          .all(),
      ).toEqual([
        { id: 1, flag: 1, label: '42', lt: 'text', raw: '0001FF', at: '2024-02-29T23:59:59.123Z' },
        { id: 2, flag: 0, label: '1.5', lt: 'text', raw: '07', at: null },
      ]);
    });

    it('rejects foreign key, strict type and trigger failures with their codes', async () => {
      const fk = await load('upsert', 'typed', [rec('3', { ref: 999 }), rec('4', { ref: 1 })]);
      expect(fk).toEqual([
        { status: 'rejected', code: 'foreign_key_violation', message: 'FOREIGN KEY constraint failed' },
        { status: 'ok' },
      ]);
      const strict = await load('upsert', 'strict_t', [rec('a', { n: 'not a number' }), rec('b', { n: 2 })]);
      expect(strict).toEqual([
        {
          status: 'rejected',
          code: 'invalid_value',
          message: expect.stringContaining('cannot store TEXT value in INTEGER column'),
        },
        { status: 'ok' },
      ]);
      const trigger = await load('insert', 'guarded', [
        rec('x', { v: 'ok' }),
        rec('y', { v: 'bad' }),
        rec('z', { v: 'fine' }),
      ]);
      expect(trigger).toEqual([
        { status: 'ok' },
        { status: 'rejected', code: 'rejected_by_trigger', message: 'bad values are refused' },
        { status: 'ok' },
      ]);
      expect(db.prepare('SELECT id FROM guarded ORDER BY id').pluck().all()).toEqual(['x', 'z']);
    });

    it('undoes all of a failing record, even work its trigger did before failing', async () => {
      const res = await load('insert', 'partial', [
        rec('p1', { v: 'ok' }),
        rec('p2', { v: 'bad' }),
        rec('p3', { v: 'ok' }),
      ]);
      expect(res).toEqual([
        { status: 'ok' },
        { status: 'rejected', code: 'rejected_by_trigger', message: 'fails after writing' },
        { status: 'ok' },
      ]);
      expect(db.prepare('SELECT id FROM partial ORDER BY id').pluck().all()).toEqual(['p1', 'p3']);
      expect(db.prepare('SELECT id FROM audit ORDER BY id').pluck().all()).toEqual(['p1', 'p3']);
    });

    it('keeps the other records when one rolls back the whole transaction', async () => {
      const res = await load('insert', 'undo_all', [
        rec('u1', { v: 'ok' }),
        rec('u2', { v: 'bad' }),
        rec('u3', { v: 'ok' }),
        rec('u4', { v: 'bad' }),
      ]);
      expect(res.map((r) => r.status)).toEqual(['ok', 'rejected', 'ok', 'rejected']);
      expect(res[1]).toMatchObject({ message: 'rolls back the transaction' });
      expect(db.prepare('SELECT id FROM undo_all ORDER BY id').pluck().all()).toEqual(['u1', 'u3']);
    });

    it('upserts on a unique index that is not the primary key', async () => {
      expect(await load('upsert', 'uniq', [rec('k', { email: 'a@x' })])).toEqual([{ status: 'ok' }]);
      expect(await load('upsert', 'uniq', [rec('k', { email: 'b@x' }, 'updated')])).toEqual([
        { status: 'ok' },
      ]);
      expect(db.prepare('SELECT id, email FROM uniq').all()).toEqual([{ id: 'k', email: 'b@x' }]);
    });

    it('names the unique index to add when the key has none', async () => {
      const problems = await session.destination!.check!({
        action: 'mirror',
        options: { table: 'plain', key: 'email' },
        fields: [],
      });
      expect(problems).toEqual([
        {
          code: 'key_not_unique',
          message: expect.stringContaining('add a unique index on that column'),
          hint: 'CREATE UNIQUE INDEX "plain_email_key" ON "plain" ("email")',
        },
      ]);
      // The hint is a statement that works.
      db.exec(problems[0]!.hint!);
      expect(
        await session.destination!.check!({
          action: 'mirror',
          options: { table: 'plain', key: 'email' },
          fields: [],
        }),
      ).toEqual([]);
    });
  });
});

describe('connector', () => {
  let session: Session;
  beforeAll(async () => {
    database('connector.db').db.close();
    session = await open('connector.db', 'connector.crm');
  });
  afterAll(() => session.close());

  it('executes several statements in one call and reads rows back', async () => {
    const res = await session.sql!.execute({
      sql: "CREATE TABLE seg (id TEXT PRIMARY KEY, n INTEGER); INSERT INTO seg VALUES ('a', 1), ('b', 9007199254740993); INSERT INTO seg VALUES ('c', NULL);",
    });
    expect(res).toEqual({ rowsAffected: 3 });
    expect(await session.sql!.query!({ sql: 'SELECT id, n FROM seg ORDER BY id' })).toEqual([
      { id: 'a', n: 1 },
      { id: 'b', n: '9007199254740993' },
      { id: 'c', n: null },
    ]);
    expect(await session.sql!.execute({ sql: "DELETE FROM seg WHERE id IN ('a', 'b')" })).toEqual({
      rowsAffected: 2,
    });
  });

  it('applies nothing of a call whose later statement fails', async () => {
    const e = await failure(
      session.sql!.execute({ sql: "INSERT INTO seg VALUES ('d', 4); INSERT INTO seg VALUES ('c', 5);" }),
    );
    expect(e).toMatchObject({
      code: 'query_failed',
      message: expect.stringContaining('UNIQUE constraint failed: seg.id'),
    });
    expect(await session.sql!.query!({ sql: 'SELECT id FROM seg ORDER BY id' })).toEqual([{ id: 'c' }]);
  });

  it('runs text that manages its own transaction as written', async () => {
    await session.sql!.execute({ sql: "BEGIN; INSERT INTO seg VALUES ('e', 5); COMMIT;" });
    expect(await session.sql!.query!({ sql: "SELECT n FROM seg WHERE id = 'e'" })).toEqual([{ n: 5 }]);
  });
});
