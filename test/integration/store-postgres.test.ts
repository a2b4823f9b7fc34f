// The PostgreSQL runtime store passes the same contract as the SQLite one, on a real server; plus
// what only it has: openStore dispatch, concurrent migration, byte-order keys, batch sizes.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../engine/store/index.js';
import { openPostgresStore, PostgresStore } from '../../engine/store/postgres.js';
import { pgMigrations } from '../../engine/store/postgres-migrations.js';
import { parsePostgresSettings } from '../../providers/postgres/connection.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { storeContract } from './store-contract.js';

const base = serverUrl('postgres');

let url = '';
let admin: pg.Client | undefined;
let schemas = 0;

/** A URL whose connections use a new, empty schema of the test database (one per store). */
async function freshSchemaUrl(): Promise<string> {
  const schema = `s${++schemas}`;
  await admin!.query(`CREATE SCHEMA ${schema}`);
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

if (base) {
  beforeAll(async () => {
    url = await freshDatabase('postgres', 'store_pg');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });
  storeContract('postgres', async () => openPostgresStore({ url: await freshSchemaUrl() }));
}

describe.skipIf(!base)('PostgreSQL store', () => {
  it('is what openStore opens for a postgres:// URL', async () => {
    const store = await openStore({ url: await freshSchemaUrl(), configDir: '/nonexistent' });
    try {
      expect(store.kind).toBe('postgres');
      await store.setMeta('k', 'v');
      expect(await store.getMeta('k')).toBe('v');
    } finally {
      await store.close();
    }
  });

  it('migrates once when several agents start together', async () => {
    const shared = await freshSchemaUrl();
    const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore({ url: shared })));
    try {
      const schema = new URL(shared).searchParams.get('options')!.split('=')[1];
      const rows = await admin!.query(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
      expect(rows.rows.map((r) => r.version)).toEqual(pgMigrations.map((m) => m.version));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('refuses a store migrated by a newer backflow', async () => {
    const u = await freshSchemaUrl();
    await (await openPostgresStore({ url: u })).close();
    const schema = new URL(u).searchParams.get('options')!.split('=')[1];
    await admin!.query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES (999, 'future')`);
    await expect(openPostgresStore({ url: u })).rejects.toThrow(/newer than this backflow knows/);
  });

  it('pages keys in byte order, like SQLite, whatever the database collation', async () => {
    const store = await openPostgresStore({ url: await freshSchemaUrl() });
    try {
      const keys = ['b', 'B', 'a', 'A', 'ä', '_', '10', '9', 'é', 'Z'];
      await store.addOutcomes({ runId: 'r1', outcomes: keys.map((key) => ({ key, hash: 'h' })) });
      await store.commitSnapshot({ mapping: 'm', runId: 'r1' });
      const seen: string[] = [];
      for await (const page of store.snapshotPages({ mapping: 'm', pageSize: 3 }))
        seen.push(...page.map(([key]) => key));
      expect(seen).toEqual([...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    } finally {
      await store.close();
    }
  });

  it('records and commits 100,000 outcomes in batches', async () => {
    const store = await openPostgresStore({ url: await freshSchemaUrl() });
    try {
      const keys = Array.from({ length: 100_000 }, (_, i) => `user-${i}`);
      for (let i = 0; i < keys.length; i += 10_000) {
        const batch = keys.slice(i, i + 10_000);
        await store.addOutcomes({ runId: 'r1', outcomes: batch.map((key) => ({ key, hash: `h${key}` })) });
      }
      await store.commitSnapshot({ mapping: 'm', runId: 'r1' });
      expect(await store.snapshotSize('m')).toBe(100_000);
    } finally {
      await store.close();
    }
  });

  it('reports an unreachable store as a connection failure', async () => {
    const u = new URL(url);
    u.pathname = '/no_such_db';
    await expect(openPostgresStore({ url: u.toString() })).rejects.toMatchObject({
      code: 'connection_failed',
    });
  });

  it('keeps the password out of where it names the server', () => {
    const s = parsePostgresSettings(
      { type: 'postgres', url: 'postgres://u:s3cret@db.example:6543/app' },
      'settings.store',
    );
    expect(s.where).toBe('db.example:6543/app');
    expect(new PostgresStore(s).kind).toBe('postgres');
  });
});
