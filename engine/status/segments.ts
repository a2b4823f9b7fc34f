import type { BackflowConfig } from '../config/types.gen.js';
import { queueDepth, segmentStats } from '../segments/stats.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { openStatusStore } from './index.js';
import type { IntegrationError, IntegrationStatus, StatusStore } from './types.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface RefreshSegmentStatusRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  /** The config directory and its `settings` (where the status document lives). */
  readonly dir: string;
  readonly settings: BackflowConfig['settings'];
  /** An already open status store (the agent keeps one); otherwise one is opened and closed. */
  readonly status?: StatusStore;
  readonly now?: Date;
}

/**
 * Rewrites the entry of every applied segment integration from the runtime store: queue depth (events
 * waiting or in flight), the last successful query, successful queries and errors in the last 24
 * hours, and the last error. The agent calls it on its tick; `segments flush` may call it after a flush.
 */
export async function refreshSegmentStatus(req: RefreshSegmentStatusRequest): Promise<IntegrationStatus[]> {
  const names = (req.state?.resources ?? [])
    .filter((r) => r.kind === 'segment_integration')
    .map((r) => r.name);
  if (names.length === 0) return [];
  const now = req.now ?? new Date();
  const queues = await queueDepth({ store: req.store });
  const entries: IntegrationStatus[] = [];
  for (const integration of names) {
    const since = new Date(now.getTime() - DAY_MS);
    const stats = await segmentStats({ store: req.store, integration, since, until: now, errorLimit: 1 });
    const last = await lastQueries(req.store, integration);
    entries.push({
      integration,
      queue_depth: queues.filter((q) => q.integration === integration).reduce((n, q) => n + q.events, 0),
      last_flush_at: last.flush,
      window_since: since.toISOString(),
      successful_queries_24h: stats.successful_queries,
      errors_24h: stats.failed_queries,
      last_error: last.error,
      updated_at: now.toISOString(),
    });
  }
  const status = req.status ?? (await openStatusStore(req.dir, req.settings));
  try {
    for (const entry of entries)
      await status.update({ kind: 'segment_integration', name: entry.integration, update: () => entry });
  } finally {
    if (!req.status) await status.close();
  }
  return entries;
}

/** The last successful query and the last error of an integration, whenever they were (the query log). */
async function lastQueries(
  store: RuntimeStore,
  integration: string,
): Promise<{ flush: string | null; error: IntegrationError | null }> {
  const [flush] = await store.sql.all<{ at: string | null }>(
    'SELECT max(at) AS at FROM segment_queries WHERE integration = ? AND ok = 1',
    [integration],
  );
  const [error] = await store.sql.all<{ at: string; kind: string; message: string | null }>(
    'SELECT at, kind, message FROM segment_queries WHERE integration = ? AND ok = 0 ORDER BY at DESC, id DESC LIMIT 1',
    [integration],
  );
  return {
    flush: flush?.at ?? null,
    error: error ? { at: error.at, query: error.kind, message: error.message ?? '' } : null,
  };
}
