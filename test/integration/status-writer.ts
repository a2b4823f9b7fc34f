// A separate process for status-concurrency tests (run with vite-node): from a common start time, it
// bumps a counter in its own entry and in a shared entry of the status document `count` times,
// through the status store's public update API.
//   vite-node status-writer.ts local PATH NAME COUNT START_AT_MS
//   vite-node status-writer.ts postgres URL NAME COUNT START_AT_MS TABLE
import { LocalStatusStore } from '../../engine/status/local.js';
import { PostgresStatusStore } from '../../engine/status/postgres.js';
import type { IntegrationStatus, StatusStore } from '../../engine/status/types.js';

const [backend, target, name, count, startAt, table] = process.argv.slice(2);
if (!backend || !target || !name || !count || !startAt)
  throw new Error('usage: BACKEND TARGET NAME COUNT START_AT');

/** The integration entry with one more event counted (the counter is what the test checks). */
function bump(previous: IntegrationStatus | undefined, integration: string): IntegrationStatus {
  const now = new Date().toISOString();
  return {
    integration,
    queue_depth: (previous?.queue_depth ?? 0) + 1,
    last_flush_at: now,
    window_since: now,
    successful_queries_24h: previous?.successful_queries_24h ?? 0,
    errors_24h: 0,
    last_error: null,
    updated_at: now,
  };
}

const store: StatusStore =
  backend === 'local'
    ? new LocalStatusStore(target)
    : await PostgresStatusStore.open({ url: target, table: table ?? 'backflow_state_status' });
try {
  while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < Number(count); i++) {
    await store.update({ kind: 'segment_integration', name, update: (p) => bump(p, name) });
    await store.update({ kind: 'segment_integration', name: 'shared', update: (p) => bump(p, 'shared') });
  }
} finally {
  await store.close();
}
process.stdout.write('done\n');
