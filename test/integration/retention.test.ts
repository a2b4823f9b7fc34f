// settings.store.retention: the run history beyond it goes after a run, once an hour at most.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../engine/store/index.js';
import { pruneHistory, retentionSubscriber } from '../../engine/store/retention.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { readSettings } from '../../engine/sync/after-run.js';
import { emptyRun, type SyncRun } from '../../engine/sync/types.js';

const open: RuntimeStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

async function workspace(settings: string): Promise<{ dir: string; store: RuntimeStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-retention-'));
  await writeFile(join(dir, 'main.yaml'), settings);
  const store = await openStore({ url: 'sqlite:store.db', configDir: dir });
  open.push(store);
  return { dir, store };
}

function run(id: string, daysAgo: number, status: SyncRun['status'] = 'failed'): SyncRun {
  return {
    ...emptyRun({
      id,
      mapping: 'users_to_crm',
      model: 'users',
      source: 'wh',
      destination: 'crm',
      action: 'upsert',
      trigger: 'schedule',
      started_at: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
    }),
    status,
  };
}

describe('history retention', () => {
  it('removes runs older than settings.store.retention after a run, and says so', async () => {
    const { dir, store } = await workspace('settings:\n  store: { retention: 7d }\n');
    for (const [id, days] of [
      ['old1', 20],
      ['old2', 10],
      ['recent', 3],
      ['newest', 0],
    ] as const)
      await store.insertRun(run(id, days));
    const lines: string[] = [];
    const newest = (await store.getRun('newest'))!;
    await retentionSubscriber({
      run: newest,
      state: null,
      store,
      configDir: dir,
      log: (m) => lines.push(m),
      settings: () => readSettings(dir),
    });
    expect((await store.listRuns({})).map((r) => r.id).sort()).toEqual(['newest', 'recent']);
    expect(lines).toEqual(['removed 2 runs older than 7d from the history (settings.store.retention)']);
  });

  it('keeps 30 days by default, and prunes at most once an hour', async () => {
    const { store } = await workspace('sources: {}\n');
    for (const [id, days] of [
      ['a', 45],
      ['b', 31],
      ['c', 29],
      ['d', 0],
    ] as const)
      await store.insertRun(run(id, days));
    const now = new Date();
    expect(await pruneHistory({ store, retention: undefined, now })).toBe(2);
    await store.insertRun(run('e', 40));
    // Within the hour: not yet.
    expect(
      await pruneHistory({ store, retention: undefined, now: new Date(now.getTime() + 59 * 60_000) }),
    ).toBe(0);
    expect(await store.getRun('e')).toBeDefined();
    expect(
      await pruneHistory({ store, retention: undefined, now: new Date(now.getTime() + 61 * 60_000) }),
    ).toBe(1);
    expect((await store.listRuns({})).map((r) => r.id).sort()).toEqual(['c', 'd']);
  });
});
