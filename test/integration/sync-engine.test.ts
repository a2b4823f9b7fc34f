/**
 * The sync engine's diff, retry and history rules (SPEC §3), end to end over real SQLite databases:
 * a warehouse model, a destination table whose triggers reject chosen records, and the runtime store.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { readConfig } from '../../engine/config/index.js';
import { applyPlan } from '../../engine/plan/apply.js';
import { plan } from '../../engine/plan/plan.js';
import { LocalStateBackend } from '../../engine/state/local.js';
import type { StateDocument } from '../../engine/state/types.js';
import { openStore } from '../../engine/store/index.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { replayRun } from '../../engine/sync/replay.js';
import { requestReset, runSync } from '../../engine/sync/run.js';
import type { SyncRun } from '../../engine/sync/types.js';
import { AWKWARD_TABLE_SQL } from '../fixtures/postgres-awkward.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';

const config = (batchSize: number) => `
sources:
  wh: { type: sqlite, path: wh.db }
models:
  people: { source: wh, primary_key: id, sql: "select id, name, plan from people" }
destinations:
  dest: { type: sqlite, path: dest.db }
mappings:
  people_copy:
    model: people
    destination: dest
    action: mirror
    table: people_copy
    key: id
    batch_size: ${batchSize}
    fields: { id: id, name: name, plan: plan }
`;

interface Project {
  readonly wh: Database.Database;
  readonly dest: Database.Database;
  readonly store: RuntimeStore;
  readonly state: StateDocument;
  readonly dir: string;
  sync(opts?: { now?: Date; reset?: boolean }): Promise<SyncRun>;
  /** The destination table, as id → "name/plan". */
  copy(): Record<string, string>;
  /** What the destination should hold: the model. */
  model(): Record<string, string>;
}

/** Writes `yaml` as the project's config in `dir`, applies it, and opens its runtime store. */
async function applied(dir: string, yaml: string): Promise<{ state: StateDocument; store: RuntimeStore }> {
  await writeFile(join(dir, 'main.yaml'), yaml);
  const loaded = await readConfig(dir);
  if (!loaded.config) throw new Error(loaded.diagnostics.map((d) => d.summary).join('\n'));
  const { state } = await applyPlan({
    plan: plan({ config: loaded.config, state: null }),
    backend: new LocalStateBackend(join(dir, 'state.json')),
  });
  return { state, store: await openStore({ url: 'sqlite:store.db', configDir: dir }) };
}

const open: Project[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) {
    p.wh.close();
    p.dest.close();
    await p.store.close();
  }
});

async function project(
  rows: [number | null, string, string][],
  mappingExtra = '',
  batchSize = 2,
): Promise<Project> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-engine-'));
  const wh = new Database(join(dir, 'wh.db'));
  wh.exec('create table people (id integer, name text, plan text)');
  const insert = wh.prepare('insert into people values (?, ?, ?)');
  for (const r of rows) insert.run(...r);
  const dest = new Database(join(dir, 'dest.db'));
  dest.exec(`
    create table people_copy (id text primary key, name text, plan text);
    create trigger no_banned_ins before insert on people_copy when new.plan = 'banned'
      begin select raise(abort, 'plan banned is refused'); end;
    create trigger no_banned_upd before update on people_copy when new.plan = 'banned'
      begin select raise(abort, 'plan banned is refused'); end;
  `);
  const { state, store } = await applied(
    dir,
    config(batchSize).replace(
      '    fields: { id: id, name: name, plan: plan }',
      `    fields: { id: id, name: name, plan: plan }${mappingExtra}`,
    ),
  );
  const p: Project = {
    wh,
    dest,
    store,
    state,
    dir,
    sync: (opts = {}) =>
      runSync({
        mapping: 'people_copy',
        state,
        configDir: dir,
        store,
        trigger: 'manual',
        ...(opts.reset ? { reset: true } : {}),
        ...(opts.now ? { now: () => opts.now! } : {}),
      }),
    copy: () =>
      Object.fromEntries(
        (
          dest.prepare('select id, name, plan from people_copy').all() as {
            id: string;
            name: string;
            plan: string;
          }[]
        ).map((r) => [r.id, `${r.name}/${r.plan}`]),
      ),
    model: () =>
      Object.fromEntries(
        (
          wh.prepare('select id, name, plan from people where id is not null').all() as {
            id: number;
            name: string;
            plan: string;
          }[]
        ).map((r) => [String(r.id), `${r.name}/${r.plan}`]),
      ),
  };
  open.push(p);
  return p;
}

describe('sync engine: diff against the last successful load', () => {
  it('sends every record first, then only what was added, changed or deleted', async () => {
    const p = await project([
      [1, 'ann', 'free'],
      [2, 'bob', 'pro'],
      [3, 'cy', 'free'],
      [4, 'di', 'team'],
      [5, 'ed', 'pro'],
    ]);
    const first = await p.sync();
    expect(first.status).toBe('success');
    expect(first.extract).toEqual({ total: 5, added: 5, updated: 0, deleted: 0 });
    expect(first.load.succeeded).toBe(5);
    expect(p.copy()).toEqual(p.model());

    const idle = await p.sync();
    expect(idle.extract).toEqual({ total: 5, added: 0, updated: 0, deleted: 0 });
    expect(idle.load.attempted).toBe(0);

    p.wh.exec(`update people set plan = 'team' where id = 2; delete from people where id = 4;
               insert into people values (6, 'fay', 'free')`);
    const next = await p.sync();
    expect(next.status).toBe('success');
    // total counts the extracted records and the deleted ones.
    expect(next.extract).toEqual({ total: 6, added: 1, updated: 1, deleted: 1 });
    expect(next.load).toMatchObject({
      attempted: 3,
      succeeded: 3,
      added: { succeeded: 1, failed: 0 },
      updated: { succeeded: 1, failed: 0 },
      deleted: { succeeded: 1, failed: 0 },
    });
    expect(p.copy()).toEqual(p.model());
    expect(await p.store.snapshotSize('people_copy')).toBe(5);
  });

  it('fails a duplicate or NULL primary key and loads every other record', async () => {
    const p = await project([
      [1, 'ann', 'free'],
      [1, 'ann again', 'pro'],
      [null, 'nobody', 'free'],
      [2, 'bob', 'pro'],
    ]);
    const run = await p.sync();
    expect(run.status).toBe('partial_success');
    expect(run.load).toMatchObject({ succeeded: 2, failed: 2 });
    expect(run.errors.map((e) => e.code).sort()).toEqual(['duplicate_primary_key', 'null_primary_key']);
    expect(p.copy()).toEqual({ 1: 'ann/free', 2: 'bob/pro' });
    const failed = await p.store.listRunRecords(run.id, { status: 'failed' });
    expect(failed.map((r) => [r.key, r.code])).toEqual([
      ['1', 'duplicate_primary_key'],
      ['(none)', 'null_primary_key'],
    ]);
  });

  it('with sync_on leaving out deletes, a deleted record is not sent and is not found again', async () => {
    const p = await project(
      [
        [1, 'ann', 'free'],
        [2, 'bob', 'pro'],
      ],
      '\n    sync_on: [added, updated]',
    );
    await p.sync();
    p.wh.exec('delete from people where id = 2');
    const run = await p.sync();
    expect(run.extract).toEqual({ total: 2, added: 0, updated: 0, deleted: 1 });
    expect(run.load.attempted).toBe(0);
    expect(p.copy()).toEqual({ 1: 'ann/free', 2: 'bob/pro' });
    const again = await p.sync();
    expect(again.extract).toEqual({ total: 1, added: 0, updated: 0, deleted: 0 });
  });

  it('knows keys holding a tab or a newline on the next run, and finds them deleted', async () => {
    const p = await project([[1, 'a', 'free']]);
    const insert = p.wh.prepare('insert into people values (?, ?, ?)');
    insert.run('tab\there', 'b', 'pro');
    insert.run('new\nline', 'c', 'pro');
    expect((await p.sync()).load.succeeded).toBe(3);
    expect((await p.sync()).extract).toEqual({ total: 3, added: 0, updated: 0, deleted: 0 });
    p.wh.prepare('delete from people where id = ?').run('new\nline');
    expect((await p.sync()).extract).toEqual({ total: 3, added: 0, updated: 0, deleted: 1 });
    expect(p.copy()).toEqual(p.model());
  });

  it('a reset sends every record as added and still finds deletions', async () => {
    const p = await project([
      [1, 'ann', 'free'],
      [2, 'bob', 'pro'],
      [3, 'cy', 'team'],
    ]);
    await p.sync();
    p.wh.exec('delete from people where id = 3');
    await requestReset(p.store, 'people_copy');
    const run = await p.sync();
    expect(run.extract).toEqual({ total: 3, added: 2, updated: 0, deleted: 1 });
    expect(p.copy()).toEqual(p.model());
    // The request is consumed by the run that completed.
    expect((await p.sync()).extract).toEqual({ total: 2, added: 0, updated: 0, deleted: 0 });
  });
});

describe('sync engine: failed records', () => {
  it('retries a failed record with its latest data, then reports it expired after retry.max_age', async () => {
    const p = await project(
      [
        [1, 'ann', 'free'],
        [2, 'bob', 'banned'],
      ],
      '\n    retry: { max_age: 1h }',
    );
    const t0 = new Date('2026-01-01T00:00:00Z');
    const first = await p.sync({ now: t0 });
    expect(first.status).toBe('partial_success');
    expect(first.errors[0]?.message).toContain('plan banned is refused');
    expect(await p.store.countPending('people_copy')).toBe(1);

    // Changed but still refused: sent again with the new data, and its window restarts.
    p.wh.exec(`update people set name = 'bobby' where id = 2`);
    const second = await p.sync({ now: new Date(t0.getTime() + 50 * 60_000) });
    expect(second.load).toMatchObject({ attempted: 1, failed: 1 });
    const [retried] = await p.store.listRunRecords(second.id, { status: 'failed' });
    expect(retried?.payload).toEqual({ id: 2, name: 'bobby', plan: 'banned' });

    // Unchanged and refused within the window: retried.
    const third = await p.sync({ now: new Date(t0.getTime() + 100 * 60_000) });
    expect(third.load).toMatchObject({ attempted: 1, failed: 1 });
    // Past max_age since it first failed with this content: reported once as expired, not sent.
    const fourth = await p.sync({ now: new Date(t0.getTime() + 120 * 60_000) });
    expect(fourth.load.attempted).toBe(0);
    expect(fourth.errors.map((e) => e.code)).toEqual(['expired']);
    expect((await p.store.listRunRecords(fourth.id, { status: 'expired' })).map((r) => r.key)).toEqual(['2']);
    const fifth = await p.sync({ now: new Date(t0.getTime() + 130 * 60_000) });
    expect(fifth.errors).toEqual([]);
    expect(fifth.load.attempted).toBe(0);

    // Fixed at the source: a change restarts the window and the record loads.
    p.wh.exec(`update people set plan = 'pro' where id = 2`);
    const fixed = await p.sync({ now: new Date(t0.getTime() + 140 * 60_000) });
    expect(fixed.status).toBe('success');
    expect(fixed.load.succeeded).toBe(1);
    expect(await p.store.countPending('people_copy')).toBe(0);
    expect(p.copy()).toEqual(p.model());
  });

  it('forgets a failed record once it has left the model', async () => {
    const p = await project([
      [1, 'ann', 'free'],
      [2, 'bob', 'banned'],
    ]);
    await p.sync();
    expect(await p.store.pendingKeys('people_copy')).toEqual(['2']);
    p.wh.exec('delete from people where id = 2');
    const run = await p.sync();
    expect(run.status).toBe('success');
    expect(await p.store.pendingKeys('people_copy')).toEqual([]);
  });
});

describe('sync engine: history and replay', () => {
  it('keeps every record of a run in order, and replays them with the data the model has now', async () => {
    const rows: [number, string, string][] = Array.from({ length: 2500 }, (_, i) => [
      i + 1,
      `p${i + 1}`,
      i % 1000 === 7 ? 'banned' : 'free',
    ]);
    const p = await project(rows, '', 100);
    const run = await p.sync();
    expect(run.load).toMatchObject({ attempted: 2500, succeeded: 2497, failed: 3 });
    const all = await p.store.listRunRecords(run.id, {});
    expect(all).toHaveLength(2500);
    expect(new Set(all.map((r) => r.key)).size).toBe(2500);
    expect((await p.store.listRunRecords(run.id, { status: 'failed' })).map((r) => r.key)).toEqual([
      '8',
      '1008',
      '2008',
    ]);
    const ok = await p.store.listRunRecords(run.id, { status: 'ok', offset: 1000, limit: 5 });
    expect(ok).toHaveLength(5);
    expect(ok.every((r) => r.status === 'ok' && r.change === 'added')).toBe(true);
    expect(await p.store.listRunRecords(run.id, { offset: 2498 })).toEqual(all.slice(2498));
    expect(await p.store.listRunRecords(run.id, { limit: 0 })).toEqual([]);

    // Loaded records are kept by key; failed ones keep their payload for drill-down.
    expect(ok[0]?.payload).toBeNull();
    expect((await p.store.listRunRecords(run.id, { status: 'failed' }))[0]?.payload).toEqual({
      id: 8,
      name: 'p8',
      plan: 'banned',
    });
    // Replay: the destination lost its rows; the run's records go again, as the model has them now.
    p.dest.exec('delete from people_copy');
    p.wh.exec(`update people set name = 'changed since' where id <= 10; delete from people where id = 2500`);
    const replay = await replayRun({ runId: run.id, state: p.state, configDir: p.dir, store: p.store });
    expect(replay.trigger).toBe('replay');
    // mirror sends deletes: the record gone from the model since is replayed as a delete.
    expect(replay.extract).toEqual({ total: 2500, added: 2499, updated: 0, deleted: 1 });
    expect(replay.load).toMatchObject({ attempted: 2500, succeeded: 2497, failed: 3 });
    const copy = p.copy();
    expect(Object.keys(copy)).toHaveLength(2496);
    expect(copy['1']).toBe('changed since/free');
    expect(copy['11']).toBe('p11/free');
  });
});

describe.skipIf(!serverUrl('postgres'))(
  'sync engine: PostgreSQL to PostgreSQL (raw rows, two loads in flight)',
  () => {
    it('loads, isolates a refused record, sends only changes and deletes, and converges', async () => {
      const url = await freshDatabase('postgres', 'engine_pg');
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      const dir = await mkdtemp(join(tmpdir(), 'backflow-engine-pg-'));
      try {
        await db.query(`CREATE TABLE people (id bigint PRIMARY KEY, name text, traits jsonb);
        INSERT INTO people SELECT g, 'p' || g, jsonb_build_object('n', g, 'price', 1.50, 'big', 12345678901234567890.0, 'tags', jsonb_build_array('a', E'tab\\there'))
          FROM generate_series(1, 5000) g;
        CREATE TABLE people_copy (id bigint PRIMARY KEY, name text CHECK (name <> 'refused'), traits jsonb);`);
        const { state, store } = await applied(
          dir,
          `
sources:
  wh: { type: postgres, url: "${url}" }
models:
  people: { source: wh, primary_key: id, sql: "select id, name, traits from people" }
destinations:
  dest: { type: postgres, url: "${url}" }
mappings:
  people_copy:
    model: people
    destination: dest
    action: mirror
    table: people_copy
    key: id
    batch_size: 300
    fields: { id: id, name: name, traits: traits }
`,
        );
        const sync = () =>
          runSync({ mapping: 'people_copy', state, configDir: dir, store, trigger: 'manual' });
        const same = async () => {
          const digest = async (t: string) =>
            (await db.query(`SELECT md5(string_agg(x::text, ',' ORDER BY id)) AS d FROM ${t} x`)).rows[0].d;
          return (await digest('people')) === (await digest('people_copy'));
        };
        try {
          await db.query(`UPDATE people SET name = 'refused' WHERE id = 777`);
          const first = await sync();
          expect(first.status).toBe('partial_success');
          expect(first.load).toMatchObject({ attempted: 5000, succeeded: 4999, failed: 1 });
          expect((await store.listRunRecords(first.id, { status: 'failed' })).map((r) => r.key)).toEqual([
            '777',
          ]);

          await db.query(`UPDATE people SET name = 'fixed' WHERE id = 777;
          UPDATE people SET traits = traits || '{"n": -1}' WHERE id % 500 = 0;
          DELETE FROM people WHERE id IN (1, 2, 3);
          INSERT INTO people VALUES (9001, 'new', '{}')`);
          const second = await sync();
          expect(second.status).toBe('success');
          // jsonb arrives exactly as the source holds it (1.50 stays 1.50; no float rounding).
          expect(second.extract).toEqual({ total: 5001, added: 2, updated: 10, deleted: 3 });
          expect(await same()).toBe(true);
          const idle = await sync();
          expect(idle.load.attempted).toBe(0);
        } finally {
          await store.close();
        }
      } finally {
        await db.end();
      }
    });

    it('passes the source text through where the types match: the copy equals the model byte for byte', async () => {
      const url = await freshDatabase('postgres', 'engine_pg_text');
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      const dir = await mkdtemp(join(tmpdir(), 'backflow-engine-pg-text-'));
      const columns = 'id, big, num, ts, tsl, d, doc, js, tags, nums, name, flag, f, b';
      try {
        // JSON scalars `1.50` and `null` are what a decoded read cannot keep (1.5; SQL NULL).
        await db.query(`${AWKWARD_TABLE_SQL};
          INSERT INTO awkward (id, doc, js, name) VALUES (4, '{"p": 1.50}', ' 1.50 ', E'tab\\there');
          INSERT INTO awkward SELECT id + 10 * k, big, num, ts, tsl, d, doc, js, tags, nums, name, flag, f, iv, b
            FROM awkward, generate_series(1, 40) AS k;
          CREATE TABLE t_plain AS SELECT ${columns} FROM awkward WITH NO DATA;
          ALTER TABLE t_plain ADD PRIMARY KEY (id);
          CREATE TABLE t_mismatch (id int PRIMARY KEY, ts text, doc text, big numeric);`);
        const fields = columns
          .split(', ')
          .map((c) => `${c}: ${c}`)
          .join(', ');
        const { state, store } = await applied(
          dir,
          `
sources:
  wh: { type: postgres, url: "${url}" }
models:
  awkward: { source: wh, primary_key: id, sql: "select ${columns} from awkward" }
destinations:
  dest: { type: postgres, url: "${url}" }
mappings:
  plain:
    model: awkward
    destination: dest
    action: upsert
    table: t_plain
    key: id
    batch_size: 100
    fields: { ${fields} }
  mismatch:
    model: awkward
    destination: dest
    action: upsert
    table: t_mismatch
    key: id
    batch_size: 100
    fields: { id: id, ts: ts, doc: doc, big: big }
`,
        );
        const sync = (mapping: string) =>
          runSync({ mapping, state, configDir: dir, store, trigger: 'manual' });
        const digest = async (from: string) =>
          (
            await db.query(
              `SELECT count(*)::int AS n, md5(string_agg(x::text, ',' ORDER BY id)) AS d FROM (SELECT ${columns} FROM ${from}) x`,
            )
          ).rows[0];
        try {
          expect((await sync('plain')).load).toMatchObject({ attempted: 164, succeeded: 164 });
          expect(await digest('t_plain')).toEqual(await digest('awkward'));
          expect(
            (await db.query('SELECT js::text AS js FROM t_plain WHERE id IN (2, 4) ORDER BY id')).rows,
          ).toEqual([{ js: 'null' }, { js: ' 1.50 ' }]);
          // A few rows changed: decoded and sent as fields; the copy still equals the model.
          await db.query(`UPDATE awkward SET name = 'changed', ts = now() WHERE id IN (1, 11)`);
          expect((await sync('plain')).load).toMatchObject({ attempted: 2, succeeded: 2 });
          expect(await digest('t_plain')).toEqual(await digest('awkward'));

          // Other column types: the values are decoded and encoded, as any mapping's are.
          expect((await sync('mismatch')).status).toBe('success');
          expect((await db.query('SELECT ts, doc, big FROM t_mismatch WHERE id = 21')).rows[0]).toEqual({
            ts: '2024-02-29T23:59:59.123456Z',
            doc: '{"a":{"b":[1,2,{"c":null}]},"s":"ünï"}',
            big: '9007199254740993',
          });
        } finally {
          await store.close();
        }
      } finally {
        await db.end();
      }
    });
  },
);
