import { durationOr } from '../config/durations.js';
import type { RunSubscriber } from '../sync/after-run.js';
import type { RuntimeStore } from './types.js';

/** `settings.store.retention` when the config does not say. */
export const DEFAULT_RETENTION = '30d';
const DEFAULT_RETENTION_MS = 30 * 86_400_000;

/** At most one pruning per store per this long: a run every minute need not scan the history each time. */
const PRUNE_EVERY_MS = 3_600_000;
const PRUNED_AT = 'history:pruned_at';

/**
 * Drops the run history older than `retention` (runs, their records and replay sets), once an hour
 * at most: the time of the last pruning is kept in the store, so every process sharing it (the CLI,
 * several agents) counts the same hour. Returns how many runs went (0 when it was not yet time).
 */
export async function pruneHistory(req: {
  readonly store: RuntimeStore;
  readonly retention: string | undefined;
  readonly now?: Date;
}): Promise<number> {
  const now = req.now ?? new Date();
  const last = await req.store.getMeta(PRUNED_AT);
  if (last !== undefined && now.getTime() - Date.parse(last) < PRUNE_EVERY_MS) return 0;
  await req.store.setMeta(PRUNED_AT, now.toISOString());
  const keepMs = durationOr(req.retention, DEFAULT_RETENTION_MS);
  return req.store.pruneRuns({ before: new Date(now.getTime() - keepMs).toISOString() });
}

/** After every run (`backflow sync`, replay, the agent): the history beyond the retention goes. */
export const retentionSubscriber: RunSubscriber = async (ctx) => {
  const retention = (await ctx.settings())?.store?.retention;
  const removed = await pruneHistory({ store: ctx.store, retention });
  if (removed > 0)
    ctx.log(
      `removed ${removed} run${removed === 1 ? '' : 's'} older than ${retention ?? DEFAULT_RETENTION} from the history (settings.store.retention)`,
    );
};
