import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../engine/errors.js';
import { openStore } from '../../engine/store/index.js';
import { applyMigrations, type Migration, migrations } from '../../engine/store/migrations.js';
import { emptyRun } from '../../engine/sync/types.js';
import { storeContract } from './store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'backflow-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `s${++n}`);

storeContract('sqlite', () => openStore({ url: 'sqlite:store.db', configDir: freshDir() }));

describe('openStore', () => {
  it('defaults to .backflow/store.db under the config directory, creating the directory', async () => {
    const dir = freshDir();
    const store = await openStore({ configDir: dir });
    expect(store.kind).toBe('sqlite');
    await store.close();
    expect(existsSync(join(dir, '.backflow', 'store.db'))).toBe(true);
  });

  it('accepts sqlite:///absolute paths and :memory:', async () => {
    const file = join(freshDir(), 'nested', 'abs.db');
    const store = await openStore({ url: `sqlite://${file}`, configDir: '/nonexistent' });
    await store.close();
    expect(existsSync(file)).toBe(true);
    const mem = await openStore({ url: 'sqlite::memory:', configDir: '/nonexistent' });
    await mem.setMeta('k', 'v');
    expect(await mem.getMeta('k')).toBe('v');
    await mem.close();
  });

  it('refuses an unknown scheme and a file that is not a database', async () => {
    await expect(openStore({ url: 'mysql://x', configDir: root })).rejects.toThrow(
      /unsupported runtime store URL scheme "mysql:"/,
    );
    const dir = freshDir();
    const bogus = join(root, `${n}-bogus.db`);
    writeFileSync(
      bogus,
      'this is not a database, just some text that is long enough to have a header'.repeat(20),
    );
    const e = await openStore({ url: `sqlite:${bogus}`, configDir: dir }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toContain(bogus);
  });

  it("keeps a sync's writes out of a feature transaction open on the same connection", async () => {
    const store = await openStore({ url: 'sqlite:store.db', configDir: freshDir() });
    try {
      let entered!: () => void;
      const inside = new Promise<void>((r) => {
        entered = r;
      });
      let letGo!: () => void;
      const held = new Promise<void>((r) => {
        letGo = r;
      });
      // A feature transaction (a segment flush, an alert) that awaits, then rolls back.
      const feature = store.sql.transaction(async (tx) => {
        await tx.run(`INSERT INTO meta (key, value) VALUES ('feature', 'x')`);
        entered();
        await held;
        throw new Error('rolled back');
      });
      await inside;
      // Meanwhile the sync engine writes: it waits for that transaction instead of joining it.
      const writes = Promise.all([
        store.setMeta('sync', 'kept'),
        store.addOutcomes({ runId: 'r1', outcomes: [{ key: 'k', hash: 'h' }] }),
        store.insertRun(
          emptyRun({
            id: 'r1',
            mapping: 'm',
            model: 'mo',
            source: 's',
            destination: 'd',
            action: 'upsert',
            trigger: 'manual',
            started_at: '2024-05-01T00:00:00.000Z',
          }),
        ),
      ]);
      letGo();
      await expect(feature).rejects.toThrow('rolled back');
      await writes;
      await store.commitSnapshot({ mapping: 'm', runId: 'r1' });
      expect(await store.getMeta('feature')).toBeUndefined();
      expect(await store.getMeta('sync')).toBe('kept');
      expect(await store.getRun('r1')).toBeDefined();
      expect(await store.snapshotSize('m')).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('lets a second connection read while a sync writes (WAL)', async () => {
    const dir = freshDir();
    const writer = await openStore({ url: 'sqlite:store.db', configDir: dir });
    const reader = await openStore({ url: 'sqlite:store.db', configDir: dir });
    const run = emptyRun({
      id: 'r1',
      mapping: 'm',
      model: 'x',
      source: 's',
      destination: 'd',
      action: 'upsert',
      trigger: 'manual',
      started_at: new Date().toISOString(),
    });
    await writer.insertRun(run);
    // A reader holding an open read transaction does not block the writer.
    const raw = new Database(join(dir, 'store.db'));
    raw.exec('BEGIN');
    expect(raw.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 1 });
    await writer.addOutcomes({ runId: 'r1', outcomes: [{ key: 'a', hash: 'h' }] });
    await writer.commitSnapshot({ mapping: 'm', runId: 'r1' });
    await writer.updateRun({ ...run, status: 'success' });
    raw.exec('COMMIT');
    raw.close();
    expect((await reader.getRun('r1'))?.status).toBe('success');
    expect(await reader.snapshotSize('m')).toBe(1);
    await writer.close();
    await reader.close();
  });
});

describe('migrations', () => {
  const last = migrations.at(-1)!.version;

  it('records each version once and refuses a store from a newer backflow', () => {
    const db = new Database(':memory:');
    expect(applyMigrations(db)).toEqual(migrations.map((m) => m.version));
    expect(applyMigrations(db)).toEqual([]);
    const extra: Migration[] = [
      ...migrations,
      { version: last + 1, name: 'later', sql: 'CREATE TABLE later (x INTEGER)' },
    ];
    expect(applyMigrations(db, extra)).toEqual([last + 1]);
    expect(db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all()).toHaveLength(
      extra.length,
    );
    expect(() => applyMigrations(db)).toThrow(/newer than this backflow knows/);
    db.close();
  });

  it('applies nothing of a migration that fails', () => {
    const db = new Database(':memory:');
    applyMigrations(db);
    const broken: Migration[] = [
      ...migrations,
      { version: last + 1, name: 'ok', sql: 'CREATE TABLE ok_table (x INTEGER)' },
      { version: last + 2, name: 'broken', sql: 'CREATE TABLE runs (x INTEGER)' },
    ];
    expect(() => applyMigrations(db, broken)).toThrow(/already exists/);
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'ok_table'").get()).toEqual({
      n: 0,
    });
    expect(db.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: migrations.length });
    db.close();
  });

  it('applies a migration listed before one already applied (features own fixed versions)', () => {
    const db = new Database(':memory:');
    const base = migrations.filter((m) => m.version === 1);
    const feature: Migration = {
      version: last + 10,
      name: 'feature',
      sql: 'CREATE TABLE feature_x (x INTEGER)',
    };
    expect(applyMigrations(db, [...base, feature])).toEqual([1, last + 10]);
    expect(applyMigrations(db, [...migrations, feature])).toEqual(
      migrations.filter((m) => m.version !== 1).map((m) => m.version),
    );
    db.close();
  });

  it('refuses a list whose versions do not increase', () => {
    const db = new Database(':memory:');
    expect(() =>
      applyMigrations(db, [
        { version: 2, name: 'x', sql: '' },
        { version: 2, name: 'y', sql: '' },
      ]),
    ).toThrow(/has version 2/);
    db.close();
  });
});
