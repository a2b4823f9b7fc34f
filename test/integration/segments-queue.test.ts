/**
 * The durable segment queue on both runtime stores (SQLite and PostgreSQL), flushing into a real
 * SQLite connector: batching by size and timeout, order per profile, retries with backoff, pause
 * and resume, clear, resync, apply events, statistics.
 */
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listNotifications } from '../../engine/alerts/in-app.js';
import { UserError } from '../../engine/errors.js';
import { markDelivered } from '../../engine/segments/batches.js';
import { discardFailedBatch } from '../../engine/segments/discard.js';
import {
  enqueueClear,
  enqueueProfiles,
  flushDue,
  queueDepth,
  resync,
  segmentStats,
} from '../../engine/segments/index.js';
import { formBatch } from '../../engine/segments/next-batch.js';
import { findIntegration } from '../../engine/segments/resolve.js';
import type { Profile } from '../../engine/segments/types.js';
import type { StateDocument } from '../../engine/state/types.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { serverUrl } from '../harness/databases.js';
import { type StoreKind, testStore, Workspace } from './segments-fixture.js';

const T0 = new Date('2026-03-01T12:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

interface Options {
  readonly enabled?: boolean;
  readonly size?: number;
  readonly clear?: boolean;
  readonly segments?: string;
  readonly table?: string;
  /** More top-level YAML (alerts). */
  readonly extra?: string;
}

function config(o: Options = {}): string {
  return `
connectors:
  crm: { type: sqlite, path: crm.db }
${o.segments ?? 'segments:\n  vip: { id: 7, name: VIP, key: CustomID, members: managed, fields: [Email] }'}
segment_integrations:
  out:
    enabled: ${o.enabled ?? true}
    connector: crm
    segments: all
    batch: { size: ${o.size ?? 100}, timeout: 10s }
    queries:
      add: |
        INSERT INTO ${o.table ?? 'mysegment'} (seg, id, email) VALUES
        {for $index, $lead = $batch}({segment_id}, '{$lead.CustomID}', {$lead.Email}){autocomma}{end}
        ON CONFLICT (seg, id) DO UPDATE SET email = excluded.email
      remove: DELETE FROM ${o.table ?? 'mysegment'} WHERE seg = {segment_id} AND id IN ({batch_in "CustomID"})
${o.clear === false ? '' : '      clear: DELETE FROM mysegment WHERE seg = {segment_id}\n'}      upsert_segment: INSERT INTO segs (id, name) VALUES ({segment_id}, '{segment_name}') ON CONFLICT (id) DO UPDATE SET name = excluded.name
      delete_segment: DELETE FROM segs WHERE id = {segment_id}
${o.extra ?? ''}`;
}

const kinds: StoreKind[] = serverUrl('postgres') ? ['sqlite', 'postgres'] : ['sqlite'];

describe.each(kinds)('segment queue on the %s store', (kind) => {
  let ws: Workspace;
  let store: RuntimeStore;
  let crm: BetterSqlite3.Database;
  let state: StateDocument;

  const members = () =>
    crm.prepare('SELECT seg, id, email FROM mysegment ORDER BY id').all() as {
      seg: number;
      id: string;
      email: string | null;
    }[];
  const flush = (now: Date, extra: { all?: boolean } = {}) =>
    flushDue({ store, state, configDir: ws.dir, now, ...extra });
  const add = (ids: string[], now = T0) =>
    enqueueProfiles({
      store,
      state,
      segment: 'vip',
      kind: 'add',
      profiles: ids.map((id) => ({ CustomID: id, Email: `${id}@x` })),
      now,
    });
  const remove = (ids: string[], now = T0) =>
    enqueueProfiles({
      store,
      state,
      segment: 'vip',
      kind: 'remove',
      profiles: ids.map((id) => ({ CustomID: id })),
      now,
    });

  beforeEach(async () => {
    ws = await Workspace.create();
    store = await testStore(kind, ws.dir);
    crm = new BetterSqlite3(ws.path('crm.db'));
    crm.exec(`CREATE TABLE mysegment (seg INTEGER, id TEXT, email TEXT, PRIMARY KEY (seg, id));
              CREATE TABLE segs (id INTEGER PRIMARY KEY, name TEXT);`);
    state = (await ws.apply(config(), store)).state;
  });
  afterEach(async () => {
    crm.close();
    await store.close();
  });

  it('runs apply events at once and waits for batch.size or batch.timeout for profiles', async () => {
    await add(['a', 'b', 'c']);
    expect(await queueDepth({ store })).toMatchObject([
      { integration: 'out', segment: 'vip', events: 4, profiles: 3, in_flight: 0, attempts: 0 },
    ]);
    const early = await flush(at(5_000));
    expect(early.batches.map((b) => [b.kind, b.status])).toEqual([['upsert_segment', 'ok']]);
    expect(early.waiting).toEqual([
      { integration: 'out', segment: 'vip', reason: 'not_due', until: at(10_000).toISOString() },
    ]);
    expect(crm.prepare('SELECT id, name FROM segs').all()).toEqual([{ id: 7, name: 'VIP' }]);
    expect(members()).toEqual([]);

    const due = await flush(at(10_000));
    expect(due.batches).toMatchObject([
      { kind: 'add', profiles: 3, status: 'ok', attempt: 1, resumed: false },
    ]);
    expect(due.queries).toBe(1);
    expect(members()).toEqual([
      { seg: 7, id: 'a', email: 'a@x' },
      { seg: 7, id: 'b', email: 'b@x' },
      { seg: 7, id: 'c', email: 'c@x' },
    ]);
    expect(await queueDepth({ store })).toEqual([]);
  });

  it('flushes full batches at batch.size, one query each, and leaves the rest for the timeout', async () => {
    state = (await ws.apply(config({ size: 2 }), store)).state;
    await flush(T0, { all: true });
    await add(['a', 'b', 'c', 'd', 'e']);
    const r = await flush(at(1_000));
    expect(r.batches.map((b) => b.profiles)).toEqual([2, 2]);
    expect(r.waiting[0]).toMatchObject({ reason: 'not_due' });
    expect(members().map((m) => m.id)).toEqual(['a', 'b', 'c', 'd']);
    expect((await flush(at(1_000), { all: true })).batches.map((b) => b.profiles)).toEqual([1]);

    state = (await ws.apply(config({ size: 1 }), store)).state;
    await add(['f', 'g', 'h']);
    expect((await flush(at(1_000))).batches.map((b) => b.profiles)).toEqual([1, 1, 1]);
    expect(members()).toHaveLength(8);
  });

  it('keeps order per profile: added then removed never ends as added', async () => {
    await add(['a', 'b']);
    await remove(['a']);
    await add(['c']);
    await remove(['c']);
    await add(['c', 'a']);
    await remove(['b']);
    const r = await flush(at(60_000));
    expect(r.batches.map((b) => `${b.kind}:${b.profiles}`)).toEqual([
      'upsert_segment:0',
      'add:2',
      'remove:1',
      'add:1',
      'remove:1',
      'add:2',
      'remove:1',
    ]);
    expect(members().map((m) => m.id)).toEqual(['a', 'c']);
  });

  it('counts a delivered batch as gone at once, and moves its events and query out in bulk', async () => {
    state = (await ws.apply(config({ size: 2 }), store)).state;
    await flush(T0, { all: true });
    await add(['a', 'b', 'c']);
    await add(['d', 'e'], at(500));
    const rows = async (table: string) =>
      Number((await store.sql.all<{ n: unknown }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    // Two batches delivered by a flush that stopped before moving them out (as a kill leaves them):
    // formed and marked as the flush does, without running their queries.
    const queue = { integration: 'out', segment: 'vip' };
    const integration = findIntegration(state, 'out')!;
    const cursor = { after: { seq: 0, to: 0 }, waitingProfiles: 5 };
    for (const profiles of [
      ['a', 'b'],
      ['c', 'd'],
    ]) {
      const formed = await formBatch({
        sql: store.sql,
        queue,
        integration,
        existing: [],
        cursor,
        all: true,
        now: at(1_000),
      });
      if (!formed || !('batch' in formed)) throw new Error('no batch formed');
      expect(formed.profiles.map((p) => p.CustomID)).toEqual(profiles);
      const log = {
        ...queue,
        kind: 'add' as const,
        at: at(1_000).toISOString(),
        ok: true,
        durationMs: 3,
        attempt: 1,
      };
      await markDelivered(store.sql, formed.batch, { ...log, profiles: 2 });
    }
    // Readers see only what is left: e, queued at +500 ms; the two queries count in the statistics.
    expect(await queueDepth({ store })).toMatchObject([
      { events: 1, profiles: 1, in_flight: 0, oldest_at: at(500).toISOString() },
    ]);
    expect(await segmentStats({ store, integration: 'out', since: T0, until: at(60_000) })).toMatchObject({
      successful_queries: 3,
      profiles: 4,
      by_kind: { add: { ok: 2, failed: 0 } },
    });
    expect([
      await rows('segment_events'),
      await rows('segment_batches'),
      await rows('segment_queries'),
    ]).toEqual([2, 2, 1]);

    // The next flush moves them out first, and runs only what was not delivered.
    const r = await flush(at(2_000), { all: true });
    expect(r.batches).toMatchObject([{ kind: 'add', profiles: 1, status: 'ok', resumed: false }]);
    expect(members().map((m) => m.id)).toEqual(['e']);
    expect([
      await rows('segment_events'),
      await rows('segment_batches'),
      await rows('segment_queries'),
    ]).toEqual([0, 0, 4]);
    expect(await queueDepth({ store })).toEqual([]);
    const stats = await segmentStats({ store, integration: 'out', since: T0, until: at(60_000) });
    expect(stats).toMatchObject({
      successful_queries: 4,
      profiles: 5,
      by_kind: { add: { ok: 3, failed: 0 } },
    });

    // A long flush moves delivered batches out as it goes and when it ends.
    state = (await ws.apply(config({ size: 1 }), store)).state;
    const many = Array.from({ length: 70 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    await add(many, at(3_000));
    const long = await flush(at(4_000));
    expect(long.batches.map((b) => b.status)).toEqual(many.map(() => 'ok'));
    expect(members()).toHaveLength(71);
    expect([
      await rows('segment_events'),
      await rows('segment_batches'),
      await rows('segment_queries'),
    ]).toEqual([0, 0, 74]);
    const last = await segmentStats({ store, integration: 'out', since: at(3_000), until: at(60_000) });
    expect(last).toMatchObject({ successful_queries: 70, profiles: 70 });
  });

  it('stores members with any key text and fields as given, and resends them as stored', async () => {
    const odd = ['', 'a"b', "it's", 'back\\slash', 'é', '😀', 'line\nbreak', '{"x":1}', 'tab\t'];
    const addProfiles = (profiles: Profile[]) =>
      enqueueProfiles({ store, state, segment: 'vip', kind: 'add', profiles, now: T0 });
    await addProfiles([
      ...odd.map((id) => ({ CustomID: id, Email: `${id}@x`, Ignored: true })),
      { CustomID: 7, Email: null },
      { CustomID: 'é', Email: 'last wins' },
    ]);
    // Profiles that are their key alone are stored without JSON; a number key is not one of them.
    await addProfiles([{ CustomID: 'solo' }, { CustomID: 'q"uote' }]);
    await addProfiles([{ CustomID: 8 }]);
    const stored = await store.sql.all<{ key: string; profile: string }>(
      "SELECT key, profile FROM segment_members WHERE key IN ('solo', 'q\"uote', '8', '7') ORDER BY key",
    );
    expect(stored).toEqual([
      { key: '7', profile: '{"CustomID":7,"Email":null}' },
      { key: '8', profile: '{"CustomID":8}' },
      { key: 'q"uote', profile: '#CustomID' },
      { key: 'solo', profile: '#CustomID' },
    ]);
    await flush(at(60_000), { all: true });
    const expected = [
      ...odd.map((id) => ({ seg: 7, id, email: id === 'é' ? 'last wins' : `${id}@x` })),
      { seg: 7, id: '7', email: null },
      { seg: 7, id: '8', email: null },
      { seg: 7, id: 'q"uote', email: null },
      { seg: 7, id: 'solo', email: null },
    ].sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(members()).toEqual(expected);
    // Resync sends the stored membership (not the request): the same rows again.
    crm.exec('DELETE FROM mysegment');
    const r = await resync({ store, state, segment: 'vip' });
    expect(r.profiles).toBe(odd.length + 4);
    await flush(at(120_000), { all: true });
    expect(members()).toEqual(expected);
    // A removed profile renders with what the segment knew of it.
    const gone = ['a"b', '7', 'solo'];
    await remove(gone, at(130_000));
    await flush(at(190_000), { all: true });
    expect(members().map((m) => m.id)).toEqual(expected.map((m) => m.id).filter((id) => !gone.includes(id)));
  });

  it('keeps a failed batch, retries it with backoff, and records every attempt', async () => {
    crm.exec('DROP TABLE mysegment');
    await flush(T0, { all: true });
    await add(['a', 'b']);
    const first = await flush(at(10_000));
    expect(first.failed).toBe(1);
    expect(first.batches[0]).toMatchObject({
      kind: 'add',
      status: 'failed',
      attempt: 1,
      next_attempt_at: at(15_000).toISOString(),
    });
    expect(first.batches[0]!.error).toMatch(/no such table: mysegment/);

    expect((await flush(at(14_000))).waiting).toEqual([
      { integration: 'out', segment: 'vip', reason: 'backoff', until: at(15_000).toISOString() },
    ]);
    const second = await flush(at(15_000));
    expect(second.batches[0]).toMatchObject({
      status: 'failed',
      attempt: 2,
      next_attempt_at: at(25_000).toISOString(),
    });
    // New events queue behind the failed batch; nothing overtakes it.
    await remove(['a'], at(16_000));
    expect(await queueDepth({ store })).toMatchObject([
      { events: 3, profiles: 3, in_flight: 2, attempts: 2 },
    ]);

    crm.exec('CREATE TABLE mysegment (seg INTEGER, id TEXT, email TEXT, PRIMARY KEY (seg, id))');
    const third = await flush(at(26_000));
    expect(third.batches.map((b) => [b.kind, b.status, b.attempt])).toEqual([
      ['add', 'ok', 3],
      ['remove', 'ok', 1],
    ]);
    expect(members().map((m) => m.id)).toEqual(['b']);

    const stats = await segmentStats({ store, integration: 'out', since: T0, until: at(60_000) });
    expect(stats).toMatchObject({
      successful_queries: 3,
      failed_queries: 2,
      profiles: 3,
      by_kind: {
        upsert_segment: { ok: 1, failed: 0 },
        add: { ok: 1, failed: 2 },
        remove: { ok: 1, failed: 0 },
      },
    });
    expect(stats.errors.map((e) => [e.time, e.kind, e.segment, e.attempt])).toEqual([
      [at(10_000).toISOString(), 'add', 'vip', 1],
      [at(15_000).toISOString(), 'add', 'vip', 2],
    ]);
    expect(stats.errors[0]!.message).toMatch(/no such table: mysegment/);
    const window = await segmentStats({ store, integration: 'out', since: at(12_000), until: at(20_000) });
    expect([window.successful_queries, window.failed_queries]).toEqual([0, 1]);
  });

  it('discards a failed head batch on request, handing its profiles over first; the queue goes on', async () => {
    crm.exec('DROP TABLE mysegment');
    await flush(T0, { all: true });
    await add(['a', 'b']);
    expect((await flush(at(10_000))).failed).toBe(1);
    await remove(['z'], at(11_000));
    const discard = (keep: (profiles: readonly Profile[]) => Promise<void> = async () => undefined) =>
      discardFailedBatch({ store, integration: 'out', segment: 'vip', keep, now: at(12_000) });

    // When keeping the profiles fails, nothing changes.
    await expect(discard(async () => Promise.reject(new Error('disk full')))).rejects.toThrow('disk full');
    expect(await queueDepth({ store })).toMatchObject([{ events: 3, in_flight: 2, attempts: 1 }]);

    let kept: unknown[] = [];
    const r = await discard(async (profiles) => {
      kept = [...profiles];
    });
    expect(r).toMatchObject({ integration: 'out', segment: 'vip', kind: 'add', profiles: 2, attempts: 1 });
    expect(r.last_error).toMatch(/no such table: mysegment/);
    expect(kept).toEqual([
      { CustomID: 'a', Email: 'a@x' },
      { CustomID: 'b', Email: 'b@x' },
    ]);
    expect(await queueDepth({ store })).toMatchObject([
      { events: 1, profiles: 1, in_flight: 0, attempts: 0 },
    ]);
    await expect(discard()).rejects.toThrow('the queue out/vip has no failed batch at its head');

    crm.exec('CREATE TABLE mysegment (seg INTEGER, id TEXT, email TEXT, PRIMARY KEY (seg, id))');
    const next = await flush(at(30_000), { all: true });
    expect(next.batches.map((b) => [b.kind, b.status])).toEqual([['remove', 'ok']]);
    const stats = await segmentStats({ store, integration: 'out', since: T0, until: at(60_000) });
    expect(stats.errors.map((e) => [e.time, e.kind, e.attempt])).toEqual([
      [at(10_000).toISOString(), 'add', 1],
      [at(12_000).toISOString(), 'add', 1],
    ]);
    expect(stats.errors[1]!.message).toMatch(
      /^discarded after 1 failed attempt \(last error: .*no such table/,
    );
  });

  it('backs off 5 s, 10 s, 20 s, 40 s, then 10 min, alerting once at the fifth attempt', async () => {
    const alerts = 'alerts:\n  oncall: { on: [segment_failed], in_app: true }\n';
    state = (await ws.apply(config({ extra: alerts }), store)).state;
    crm.exec('DROP TABLE mysegment');
    await flush(T0, { all: true });
    await add(['a']);
    let now = at(10_000);
    const waits: number[] = [];
    const notified: number[] = [];
    for (let attempt = 1; attempt <= 7; attempt++) {
      const r = await flush(now);
      const b = r.batches.at(-1)!;
      expect(b).toMatchObject({ kind: 'add', status: 'failed', attempt });
      const next = new Date(b.next_attempt_at!);
      waits.push(next.getTime() - now.getTime());
      // One millisecond early is still backing off.
      expect((await flush(new Date(next.getTime() - 1))).waiting).toMatchObject([{ reason: 'backoff' }]);
      notified.push((await listNotifications({ store })).length);
      now = next;
    }
    expect(waits).toEqual([5_000, 10_000, 20_000, 40_000, 600_000, 600_000, 600_000]);
    expect(notified).toEqual([0, 0, 0, 0, 1, 1, 1]);
    const [batch] = await store.sql.all<{ attempts: number; alerted_at: string | null }>(
      'SELECT attempts, alerted_at FROM segment_batches',
    );
    expect(Number(batch!.attempts)).toBe(7);
    expect(batch!.alerted_at).not.toBeNull();
    expect((await queueDepth({ store }))[0]).toMatchObject({ profiles: 1, attempts: 7 });
  });

  it('stops between batches when aborted, leaving the rest queued', async () => {
    state = (await ws.apply(config({ size: 1 }), store)).state;
    await flush(T0, { all: true });
    await add(['a', 'b', 'c', 'd', 'e']);
    const controller = new AbortController();
    const r = await flushDue({
      store,
      state,
      configDir: ws.dir,
      now: at(1_000),
      signal: controller.signal,
      onBatch: () => controller.abort(),
    });
    // The batch whose query had started when the signal came still completes and is recorded.
    expect(r.batches.map((b) => b.status)).toEqual(['ok', 'ok']);
    expect(r.waiting).toEqual([{ integration: 'out', segment: 'vip', reason: 'aborted' }]);
    expect(await queueDepth({ store })).toMatchObject([{ profiles: 3, in_flight: 0 }]);
    expect((await flush(at(1_000))).batches.map((b) => b.profiles)).toEqual([1, 1, 1]);
    expect(members().map((m) => m.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('keeps the queue of a paused integration and flushes it when enabled again', async () => {
    state = (await ws.apply(config({ enabled: false }), store)).state;
    await add(['a', 'b']);
    const paused = await flush(at(3_600_000), { all: true });
    expect(paused.batches).toEqual([]);
    expect(paused.waiting).toEqual([{ integration: 'out', segment: 'vip', reason: 'paused' }]);
    expect(await queueDepth({ store, state })).toMatchObject([{ events: 3, paused: true, missing: false }]);
    expect(members()).toEqual([]);

    state = (await ws.apply(config({ enabled: true }), store)).state;
    const resumed = await flush(at(3_600_000));
    expect(resumed.batches.map((b) => [b.kind, b.status])).toEqual([
      ['upsert_segment', 'ok'],
      ['add', 'ok'],
    ]);
    expect(members().map((m) => m.id)).toEqual(['a', 'b']);
  });

  it('clears with the clear query, or by removing every member where there is none', async () => {
    await add(['a', 'b']);
    await flush(at(60_000));
    const cleared = await enqueueClear({ store, state, segment: 'vip', now: at(61_000) });
    expect(cleared).toMatchObject({ kind: 'clear', profiles: 2, integrations: ['out'], events: 1 });
    expect((await flush(at(61_000))).batches.map((b) => b.kind)).toEqual(['clear']);
    expect(members()).toEqual([]);

    state = (await ws.apply(config({ clear: false }), store)).state;
    await add(['c', 'd'], at(62_000));
    await flush(at(80_000));
    expect(members().map((m) => m.id)).toEqual(['c', 'd']);
    const removed = await enqueueClear({ store, state, segment: 'vip', now: at(81_000) });
    expect(removed).toMatchObject({ profiles: 2, events: 2 });
    expect((await flush(at(100_000))).batches.map((b) => `${b.kind}:${b.profiles}`)).toEqual(['remove:2']);
    expect(members()).toEqual([]);
  });

  it('resyncs: clear, then every current member with its fields', async () => {
    await add(['a', 'b', 'c']);
    await remove(['b']);
    await flush(at(60_000));
    crm.exec(`UPDATE mysegment SET email = 'stale'; INSERT INTO mysegment VALUES (7, 'ghost', NULL)`);
    const r = await resync({ store, state, segment: 'vip', now: at(61_000) });
    expect(r).toMatchObject({ kind: 'resync', profiles: 2, integrations: ['out'], events: 3 });
    // The clear is not batched and runs at once; the additions wait for batch.size or batch.timeout.
    expect((await flush(at(61_000))).batches.map((b) => `${b.kind}:${b.profiles}`)).toEqual(['clear:0']);
    expect(members()).toEqual([]);
    expect((await flush(at(71_000))).batches.map((b) => `${b.kind}:${b.profiles}`)).toEqual(['add:2']);
    expect(members()).toEqual([
      { seg: 7, id: 'a', email: 'a@x' },
      { seg: 7, id: 'c', email: 'c@x' },
    ]);
  });

  it('runs upsert_segment on create and rename, delete_segment on delete', async () => {
    const two =
      'segments:\n  vip: { id: 7, name: VIP, key: CustomID, members: managed, fields: [Email] }\n  gold: { id: 8, name: Gold, key: CustomID, members: managed, fields: [Email] }';
    state = (await ws.apply(config({ segments: two }), store)).state;
    await flush(T0);
    expect(crm.prepare('SELECT id, name FROM segs ORDER BY id').all()).toEqual([
      { id: 7, name: 'VIP' },
      { id: 8, name: 'Gold' },
    ]);
    const renamed = two.replace('name: Gold', `name: "Gold 'n' \\"Friends\\""`);
    state = (await ws.apply(config({ segments: renamed }), store)).state;
    await flush(T0);
    expect(crm.prepare('SELECT name FROM segs WHERE id = 8').pluck().get()).toBe(`Gold 'n' "Friends"`);
    const applied = await ws.apply(config(), store);
    state = applied.state;
    expect(applied.effects.map((e) => e.effect)).toEqual([
      { kind: 'delete_segment', segment: 'gold', integration: 'out' },
    ]);
    const r = await flush(T0);
    expect(r.batches.map((b) => [b.segment, b.kind, b.status])).toEqual([['gold', 'delete_segment', 'ok']]);
    expect(crm.prepare('SELECT id FROM segs').pluck().all()).toEqual([7]);
  });

  it('refuses profiles without the key and names unknown segments', async () => {
    await expect(
      enqueueProfiles({
        store,
        state,
        segment: 'vip',
        kind: 'add',
        profiles: [{ CustomID: 'a' }, { Email: 'x' }],
      }),
    ).rejects.toThrow(/profile 2 has no "CustomID"/);
    await expect(
      enqueueProfiles({ store, state, segment: 'vips', kind: 'add', profiles: [] }),
    ).rejects.toThrow(UserError);
    expect(await queueDepth({ store })).toMatchObject([{ events: 1, profiles: 0 }]);
  });
});
