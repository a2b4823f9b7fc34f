// Segment integration entries of the status document, refreshed from a real flush: queries that
// succeed, one that fails and stays queued, and the 24-hour window.
import { readFile } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueProfiles, flushDue } from '../../engine/segments/index.js';
import type { StateDocument } from '../../engine/state/types.js';
import { parseStatus } from '../../engine/status/document.js';
import { refreshSegmentStatus } from '../../engine/status/segments.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { schemaErrors } from '../fixtures/output-schemas.js';
import { testStore, Workspace } from './segments-fixture.js';

const CONFIG = `
connectors:
  crm: { type: sqlite, path: crm.db }
segments:
  vip: { id: 42, name: VIP, key: CustomID, members: managed, fields: [CustomID] }
segment_integrations:
  export_vips:
    connector: crm
    segments: [vip]
    batch: { size: 2, timeout: 1s }
    queries:
      add: "INSERT INTO mysegment (seg, client) VALUES {for $index, $lead = $batch}({segment_id}, {$lead.CustomID}){autocomma}{end}"
      remove: "DELETE FROM missing_table WHERE client IN ({batch_in \\"CustomID\\"})"
  idle:
    connector: crm
    segments: [vip]
    enabled: false
    queries:
      add: "INSERT INTO mysegment (seg, client) VALUES (0, 'x')"
      remove: "DELETE FROM mysegment WHERE seg = 0"
`;

describe('segment integration entries', () => {
  let ws: Workspace;
  let store: RuntimeStore;
  let state: StateDocument;

  beforeAll(async () => {
    ws = await Workspace.create('backflow-status-seg-');
    const crm = new Database(ws.path('crm.db'));
    crm.exec('create table mysegment (seg integer, client text)');
    crm.close();
    store = await testStore('sqlite', ws.dir);
    ({ state } = await ws.apply(CONFIG, store));
  });
  afterAll(async () => {
    await store?.close();
  });

  it('counts the queries of the last 24 hours, the queue left, the last flush and the last error', async () => {
    const profiles = ['a', 'b', 'c', 'd'].map((CustomID) => ({ CustomID }));
    await enqueueProfiles({ store, state, segment: 'vip', kind: 'add', profiles });
    const added = await flushDue({ store, state, configDir: ws.dir, all: true });
    await enqueueProfiles({ store, state, segment: 'vip', kind: 'remove', profiles: [{ CustomID: 'a' }] });
    const removed = await flushDue({
      store,
      state,
      configDir: ws.dir,
      all: true,
      integration: 'export_vips',
    });
    const ok = [...added.batches, ...removed.batches].filter(
      (b) => b.integration === 'export_vips' && b.status === 'ok',
    );
    const failed = removed.batches.filter((b) => b.status === 'failed');
    expect(ok.filter((b) => b.kind === 'add')).toHaveLength(2);
    expect(failed.map((b) => b.kind)).toEqual(['remove']);

    const now = new Date();
    const entries = await refreshSegmentStatus({ store, state, dir: ws.dir, settings: undefined, now });
    const doc = parseStatus(await readFile(ws.path('.backflow/status.json'), 'utf8'), 'status.json');
    expect(schemaErrors('status', doc)).toEqual([]);
    expect(Object.values(doc.segment_integrations)).toEqual(entries);
    const entry = doc.segment_integrations.export_vips!;
    expect(entry).toMatchObject({
      integration: 'export_vips',
      queue_depth: 1,
      successful_queries_24h: ok.length,
      errors_24h: 1,
      window_since: new Date(now.getTime() - 86_400_000).toISOString(),
      updated_at: now.toISOString(),
    });
    expect(entry.last_error).toMatchObject({ query: 'remove' });
    expect(entry.last_error?.message).toContain('missing_table');
    expect(entry.last_flush_at! >= added.started_at && entry.last_flush_at! <= added.finished_at).toBe(true);
    // The paused integration keeps its whole queue and has run nothing.
    expect(doc.segment_integrations.idle).toMatchObject({
      queue_depth: 5, // four adds and the remove
      last_flush_at: null,
      successful_queries_24h: 0,
      errors_24h: 0,
      last_error: null,
    });
  });

  it('leaves runs older than the window out of the counts, but remembers the last flush and error', async () => {
    const later = new Date(Date.now() + 2 * 86_400_000);
    await refreshSegmentStatus({ store, state, dir: ws.dir, settings: undefined, now: later });
    const doc = parseStatus(await readFile(ws.path('.backflow/status.json'), 'utf8'), 'status.json');
    expect(doc.segment_integrations.export_vips).toMatchObject({
      successful_queries_24h: 0,
      errors_24h: 0,
      queue_depth: 1,
      last_error: { query: 'remove' },
    });
    expect(doc.segment_integrations.export_vips?.last_flush_at).not.toBeNull();
  });
});
