// Two processes updating the status document at the same time lose nothing: each bumps a counter in
// its own entry and in a shared one, from a common start time; every bump must be there at the end.
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStatusStore } from '../../engine/status/local.js';
import { PostgresStatusStore } from '../../engine/status/postgres.js';
import type { StatusStore } from '../../engine/status/types.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';

const root = join(import.meta.dirname, '..', '..');
const COUNT = 60;

function writer(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      join(root, 'node_modules', '.bin', 'vite-node'),
      [join(import.meta.dirname, 'status-writer.ts'), ...args],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 && out.includes('done') ? resolve() : reject(new Error(`writer exited ${code}: ${out}`)),
    );
  });
}

async function race(backend: string, target: string, extra: readonly string[] = []): Promise<void> {
  const startAt = String(Date.now() + 6_000); // both processes are up by then
  await Promise.all(
    ['first', 'second'].map((name) => writer([backend, target, name, String(COUNT), startAt, ...extra])),
  );
}

async function counters(store: StatusStore): Promise<Record<string, number>> {
  const doc = await store.read();
  return Object.fromEntries(Object.entries(doc.segment_integrations).map(([k, v]) => [k, v.queue_depth]));
}

describe('concurrent status updates from two processes', () => {
  it('local: the lock file serialises read-modify-write, so no update is lost', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'backflow-status-race-')), '.backflow', 'status.json');
    await race('local', path);
    const store = new LocalStatusStore(path);
    expect(await counters(store)).toEqual({ first: COUNT, second: COUNT, shared: 2 * COUNT });
  }, 120_000);

  it.skipIf(!serverUrl('postgres'))(
    'postgres: one row per entry, updated under a per-entry lock',
    async () => {
      const url = await freshDatabase('postgres', 'status_race');
      await race('postgres', url, ['race_state_status']);
      const store = await PostgresStatusStore.open({ url, table: 'race_state_status' });
      try {
        expect(await counters(store)).toEqual({ first: COUNT, second: COUNT, shared: 2 * COUNT });
      } finally {
        await store.close();
      }
    },
    120_000,
  );
});
