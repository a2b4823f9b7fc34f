// The status document beside a local state, written by the after-run subscriber on real syncs:
// success, partial success and failure, the failure streak, the 20-run window, and that writing it
// leaves the state (its bytes, its serial, its lock) alone.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStatus } from '../../engine/status/document.js';
import { isFailing } from '../../engine/status/index.js';
import type { StatusDocument } from '../../engine/status/types.js';
import { schemaErrors } from '../fixtures/output-schemas.js';
import { AWKWARD_MESSAGE, type Workspace, workspace } from './status-fixture.js';

let ws: Workspace;
const statusFile = () => join(ws.dir, '.backflow', 'status.json');
const stateFile = () => join(ws.dir, '.backflow', 'state.json');
async function document(): Promise<StatusDocument> {
  const doc = parseStatus(await readFile(statusFile(), 'utf8'), 'status.json');
  expect(schemaErrors('status', doc)).toEqual([]);
  return doc;
}

beforeAll(async () => {
  ws = await workspace();
});
afterAll(async () => {
  await ws?.close();
});

describe('status document (local state backend)', () => {
  it('records a successful run: counts, health, last success, no failures', async () => {
    ws.wh.exec("insert into people values (1, 'ada'), (2, 'grace'), (3, 'alan')");
    const run = await ws.sync('people_to_dest');
    expect(run.status).toBe('success');
    const entry = (await document()).mappings.people_to_dest!;
    expect(entry).toMatchObject({
      mapping: 'people_to_dest',
      model: 'people',
      source: 'wh',
      destination: 'dest',
      action: 'upsert',
      health: 'healthy',
      last_success_at: run.finished_at,
      consecutive_failures: 0,
    });
    expect(entry.last_run).toEqual({
      id: run.id,
      status: 'success',
      trigger: 'manual',
      started_at: run.started_at,
      finished_at: run.finished_at,
      duration_ms: run.duration_ms,
      extract: { total: 3, added: 3, updated: 0, deleted: 0 },
      load: run.load,
      error_groups: 0,
      top_error: null,
    });
    expect(entry.recent_runs.map((r) => r.id)).toEqual([run.id]);
  });

  it('records a partial success with its top error and recommended action', async () => {
    const first = (await document()).mappings.people_to_dest!;
    ws.wh.exec("insert into people values (4, 'bad apple'), (5, 'bad egg'), (6, 'edsger')");
    const run = await ws.sync('people_to_dest');
    expect(run.status).toBe('partial_success');
    const entry = (await document()).mappings.people_to_dest!;
    expect(entry.health).toBe('degraded');
    expect(isFailing(entry)).toBe(false);
    expect(entry.consecutive_failures).toBe(0);
    expect(entry.last_success_at).toBe(first.last_success_at);
    expect(entry.last_run.load).toMatchObject({ attempted: 3, succeeded: 1, failed: 2 });
    const top = run.errors[0]!;
    expect(entry.last_run.top_error).toEqual({
      code: top.code,
      message: top.message,
      records: 2,
      recommended_action: top.recommended_action,
    });
    expect(entry.last_run.top_error?.message).toContain(AWKWARD_MESSAGE);
    expect(entry.recent_runs.map((r) => r.status)).toEqual(['partial_success', 'success']);
  });

  it('counts failures in a row and resets the count on the next run that completes', async () => {
    ws.wh.exec('alter table people rename to people_gone');
    const failed1 = await ws.sync('people_to_dest');
    const failed2 = await ws.sync('people_to_dest');
    expect([failed1.status, failed2.status]).toEqual(['failed', 'failed']);
    let entry = (await document()).mappings.people_to_dest!;
    expect(entry).toMatchObject({ health: 'failing', consecutive_failures: 2 });
    expect(isFailing(entry)).toBe(true);
    expect(entry.last_run.id).toBe(failed2.id);
    expect(entry.last_run.top_error?.code).toBe(failed2.errors[0]!.code);
    expect(entry.last_run.top_error?.recommended_action).toBe(failed2.errors[0]!.recommended_action);

    ws.wh.exec('alter table people_gone rename to people');
    ws.wh.exec("delete from people where name like 'bad%'");
    const ok = await ws.sync('people_to_dest');
    expect(ok.status).toBe('success');
    entry = (await document()).mappings.people_to_dest!;
    expect(entry).toMatchObject({
      health: 'healthy',
      consecutive_failures: 0,
      last_success_at: ok.finished_at,
    });
  });

  it('keeps the last 20 runs newest first, and a failure streak longer than the window', async () => {
    ws.wh.exec('alter table people rename to people_gone');
    const failures = [];
    for (let i = 0; i < 22; i++) failures.push(await ws.sync('people_to_dest'));
    const entry = (await document()).mappings.people_to_dest!;
    expect(entry.recent_runs).toHaveLength(20);
    expect(entry.recent_runs.map((r) => r.id)).toEqual(
      failures
        .slice(-20)
        .reverse()
        .map((r) => r.id),
    );
    const stored = await ws.store.listRuns({ mappings: ['people_to_dest'], limit: 20 });
    expect(entry.recent_runs.map((r) => r.id)).toEqual(stored.map((r) => r.id));
    expect(entry.consecutive_failures).toBe(22);
    expect(entry.recent_runs[0]).toEqual({
      id: failures[21]!.id,
      status: 'failed',
      started_at: failures[21]!.started_at,
      finished_at: failures[21]!.finished_at,
      extract: failures[21]!.extract,
      load: { attempted: 0, succeeded: 0, failed: 0 },
    });
    ws.wh.exec('alter table people_gone rename to people');
  });

  it('keeps one entry per mapping', async () => {
    const run = await ws.sync('people_to_log');
    const doc = await document();
    expect(Object.keys(doc.mappings)).toEqual(['people_to_dest', 'people_to_log']);
    expect(doc.mappings.people_to_log!.last_run.id).toBe(run.id);
    expect(doc.mappings.people_to_dest!.consecutive_failures).toBe(22);
    expect(doc.updated_at).toBe(doc.mappings.people_to_log!.updated_at);
  });

  it('never takes the apply lock nor changes the state: it writes while an apply holds the lock', async () => {
    const before = await readFile(stateFile(), 'utf8');
    const lock = await ws.backend.lock({ operation: 'apply', who: 'someone@ci' });
    try {
      const run = await ws.sync('people_to_dest');
      expect((await document()).mappings.people_to_dest!.last_run.id).toBe(run.id);
      expect((await ws.backend.currentLock())?.id).toBe(lock.info.id);
    } finally {
      await lock.release();
    }
    expect(await readFile(stateFile(), 'utf8')).toBe(before);
    expect((await ws.backend.read())?.serial).toBe(ws.state.serial);
  });

  it('sets a corrupt document aside and starts again from the store', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(statusFile(), '{"format_version": 1, "mappings": {');
    const run = await ws.sync('people_to_dest');
    const entry = (await document()).mappings.people_to_dest!;
    expect(entry.last_run.id).toBe(run.id);
    expect(entry.recent_runs).toHaveLength(20);
    expect(await readFile(`${statusFile()}.corrupt`, 'utf8')).toBe('{"format_version": 1, "mappings": {');
  });

  it('no subscriber failed along the way', () => {
    expect(ws.logs.filter((l) => l.startsWith('warning'))).toEqual([]);
  });
});
