// The status document with the postgres state backend: a `<table>_status` table beside the state
// table, one row per entry, written by the after-run subscriber on real syncs without touching the
// state's rows, serial or advisory lock.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStatusStore } from '../../engine/status/index.js';
import type { StatusDocument } from '../../engine/status/types.js';
import { schemaErrors } from '../fixtures/output-schemas.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { type Workspace, workspace } from './status-fixture.js';

describe.skipIf(!serverUrl('postgres'))('status document (postgres state backend)', () => {
  let url: string;
  let ws: Workspace;
  let admin: pg.Client;
  const settings = () => ({ state: { backend: 'postgres' as const, url, table: 'bf_state' } });
  async function document(): Promise<StatusDocument> {
    const status = await openStatusStore(ws.dir, settings());
    try {
      const doc = await status.read();
      expect(schemaErrors('status', doc)).toEqual([]);
      return doc;
    } finally {
      await status.close();
    }
  }

  beforeAll(async () => {
    url = await freshDatabase('postgres', 'status_pg');
    ws = await workspace({
      settings: `settings:\n  state: { backend: postgres, url: "${url}", table: bf_state }`,
    });
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => {
    await ws?.close();
    await admin?.end();
  });

  it('writes one row per mapping in bf_state_status and no local file', async () => {
    ws.wh.exec("insert into people values (1, 'ada'), (2, 'bad apple')");
    const partial = await ws.sync('people_to_dest');
    const logged = await ws.sync('people_to_log');
    expect([partial.status, logged.status]).toEqual(['partial_success', 'success']);
    const rows = await admin.query('SELECT kind, name, entry FROM bf_state_status ORDER BY name');
    expect(rows.rows.map((r) => [r.kind, r.name])).toEqual([
      ['mapping', 'people_to_dest'],
      ['mapping', 'people_to_log'],
    ]);
    expect(rows.rows[0].entry.last_run.id).toBe(partial.id);
    const doc = await document();
    expect(doc.mappings.people_to_dest).toMatchObject({
      health: 'degraded',
      consecutive_failures: 0,
      last_success_at: null,
      last_run: { id: partial.id, load: { attempted: 2, succeeded: 1, failed: 1 } },
    });
    expect(doc.mappings.people_to_log!.last_success_at).toBe(logged.finished_at);
    expect(existsSync(join(ws.dir, '.backflow', 'status.json'))).toBe(false);
  });

  it('counts failures while an apply holds the state lock, and leaves the state alone', async () => {
    const stateRows = (await admin.query('SELECT id, serial FROM bf_state ORDER BY id')).rows;
    const lock = await ws.backend.lock({ operation: 'apply', who: 'someone@ci' });
    try {
      ws.wh.exec('alter table people rename to people_gone');
      const runs = [
        await ws.sync('people_to_dest'),
        await ws.sync('people_to_dest'),
        await ws.sync('people_to_dest'),
      ];
      expect(runs.map((r) => r.status)).toEqual(['failed', 'failed', 'failed']);
      const entry = (await document()).mappings.people_to_dest!;
      expect(entry).toMatchObject({
        health: 'failing',
        consecutive_failures: 3,
        last_run: { id: runs[2]!.id },
      });
      expect(entry.recent_runs.map((r) => r.status)).toEqual([
        'failed',
        'failed',
        'failed',
        'partial_success',
      ]);
      expect((await ws.backend.currentLock())?.id).toBe(lock.info.id);
    } finally {
      await lock.release();
      ws.wh.exec('alter table people_gone rename to people');
    }
    expect((await admin.query('SELECT id, serial FROM bf_state ORDER BY id')).rows).toEqual(stateRows);
    expect((await ws.backend.read())?.serial).toBe(ws.state.serial);
    expect(ws.logs.filter((l) => l.startsWith('warning'))).toEqual([]);
  });
});
