/**
 * Model-backed membership on both runtime stores: a refresh streams the model (a real SQLite
 * warehouse), diffs it against the stored members, and queues the differences; a flush then
 * makes the connector's table equal to the model.
 */
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../engine/errors.js';
import { enqueueProfiles, flushDue, refreshModelSegments, resync } from '../../engine/segments/index.js';
import type { StateDocument } from '../../engine/state/types.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { serverUrl } from '../harness/databases.js';
import { type StoreKind, testStore, Workspace } from './segments-fixture.js';

const config = (sql = 'SELECT ext AS CustomID, email AS Email FROM users WHERE vip = 1 ORDER BY n') => `
sources:
  wh: { type: sqlite, path: wh.db }
models:
  vips: { source: wh, sql: "${sql}", primary_key: CustomID }
connectors:
  crm: { type: sqlite, path: crm.db }
segments:
  vip: { id: 9, name: VIP, key: CustomID, members: { model: vips } }
  hand: { id: 10, name: Hand, key: CustomID, members: managed }
segment_integrations:
  out:
    connector: crm
    segments: [vip]
    batch: { size: 1000, timeout: 10s }
    queries:
      add: |
        INSERT INTO mysegment (id, email) VALUES
        {for $index, $lead = $batch}('{$lead.CustomID}', {$lead.Email}){autocomma}{end}
        ON CONFLICT (id) DO UPDATE SET email = excluded.email
      remove: DELETE FROM mysegment WHERE id IN ({batch_in "CustomID"})
      clear: DELETE FROM mysegment
`;

const kinds: StoreKind[] = serverUrl('postgres') ? ['sqlite', 'postgres'] : ['sqlite'];

describe.each(kinds)('model-backed segments on the %s store', (kind) => {
  let ws: Workspace;
  let store: RuntimeStore;
  let wh: BetterSqlite3.Database;
  let crm: BetterSqlite3.Database;
  let state: StateDocument;

  const refresh = async (segment?: string) => {
    const [r] = await refreshModelSegments({
      store,
      state,
      configDir: ws.dir,
      ...(segment ? { segment } : {}),
    });
    return r!;
  };
  const flush = () => flushDue({ store, state, configDir: ws.dir, all: true });
  const table = () => crm.prepare('SELECT id, email FROM mysegment ORDER BY id').all();
  const users = (rows: [number, string | null, string, number][]) => {
    wh.exec('DELETE FROM users');
    const insert = wh.prepare('INSERT INTO users (n, ext, email, vip) VALUES (?, ?, ?, ?)');
    wh.transaction(() => {
      for (const r of rows) insert.run(...r);
    })();
  };

  beforeEach(async () => {
    ws = await Workspace.create();
    store = await testStore(kind, ws.dir);
    wh = new BetterSqlite3(ws.path('wh.db'));
    wh.exec('CREATE TABLE users (n INTEGER PRIMARY KEY, ext TEXT, email TEXT, vip INTEGER)');
    crm = new BetterSqlite3(ws.path('crm.db'));
    crm.exec('CREATE TABLE mysegment (id TEXT PRIMARY KEY, email TEXT)');
    state = (await ws.apply(config(), store)).state;
  });
  afterEach(async () => {
    wh.close();
    crm.close();
    await store.close();
  });

  it('adds, removes and updates members as the model changes', async () => {
    users([
      [1, 'u1', 'a@x', 1],
      [2, 'u2', 'b@x', 1],
      [3, 'u3', "c'@x", 1],
      [4, 'u4', 'd@x', 0],
    ]);
    expect(await refresh()).toEqual({
      segment: 'vip',
      model: 'vips',
      rows: 3,
      added: 3,
      removed: 0,
      changed: 0,
      unchanged: 0,
      duplicates: 0,
      missing_key: 0,
      events: 3,
    });
    await flush();
    expect(table()).toEqual([
      { id: 'u1', email: 'a@x' },
      { id: 'u2', email: 'b@x' },
      { id: 'u3', email: "c'@x" },
    ]);

    users([
      [1, 'u1', 'a@x', 1],
      [2, 'u2', 'new@x', 1],
      [3, 'u3', "c'@x", 0],
      [4, 'u4', 'd@x', 1],
      [5, 'u4', 'dup@x', 1],
      [6, null, 'nokey@x', 1],
    ]);
    expect(await refresh('vip')).toMatchObject({
      rows: 5,
      added: 1,
      removed: 1,
      changed: 1,
      unchanged: 1,
      duplicates: 1,
      missing_key: 1,
      events: 3,
    });
    const r = await flush();
    expect(r.batches.map((b) => `${b.kind}:${b.profiles}`)).toEqual(['add:2', 'remove:1']);
    expect(table()).toEqual([
      { id: 'u1', email: 'a@x' },
      { id: 'u2', email: 'new@x' },
      { id: 'u4', email: 'd@x' },
    ]);
    expect(await refresh()).toMatchObject({ added: 0, removed: 0, changed: 0, unchanged: 3, events: 0 });
  });

  it('diffs models larger than one page of rows', async () => {
    const many = Array.from(
      { length: 2_500 },
      (_, i) => [i + 1, `u${i + 1}`, `${i}@x`, 1] as [number, string, string, number],
    );
    users(many);
    expect(await refresh()).toMatchObject({ rows: 2_500, added: 2_500, events: 2_500 });
    await flush();
    expect(crm.prepare('SELECT count(*) FROM mysegment').pluck().get()).toBe(2_500);
    users(many.filter(([n]) => n % 3 === 0));
    expect(await refresh()).toMatchObject({ added: 0, removed: 1_667, unchanged: 833 });
    await flush();
    expect(crm.prepare('SELECT count(*) FROM mysegment').pluck().get()).toBe(833);
  });

  it('resyncs a model-backed segment from its stored membership', async () => {
    users([
      [1, 'u1', 'a@x', 1],
      [2, 'u2', 'b@x', 1],
    ]);
    await refresh();
    await flush();
    crm.exec(`INSERT INTO mysegment VALUES ('stray', NULL); UPDATE mysegment SET email = 'stale'`);
    expect(await resync({ store, state, segment: 'vip' })).toMatchObject({ profiles: 2, events: 3 });
    expect((await flush()).batches.map((b) => b.kind)).toEqual(['clear', 'add']);
    expect(table()).toEqual([
      { id: 'u1', email: 'a@x' },
      { id: 'u2', email: 'b@x' },
    ]);
  });

  it('refuses events by hand for a model-backed segment, and a refresh of a managed one', async () => {
    await expect(
      enqueueProfiles({ store, state, segment: 'vip', kind: 'add', profiles: [{ CustomID: 'x' }] }),
    ).rejects.toThrow(/takes its members from model vips/);
    await expect(refresh('hand')).rejects.toThrow(UserError);
  });

  it('refuses a model without the key column and leaves the membership alone', async () => {
    users([[1, 'u1', 'a@x', 1]]);
    await refresh();
    state = (await ws.apply(config('SELECT email AS Email FROM users'), store)).state;
    await expect(refresh()).rejects.toThrow(/returns no column "CustomID"/);
    state = (await ws.apply(config(), store)).state;
    expect(await refresh()).toMatchObject({ unchanged: 1, removed: 0 });
  });
});
