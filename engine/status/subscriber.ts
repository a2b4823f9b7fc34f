import type { RuntimeStore } from '../store/types.js';
import type { RunSubscriber } from '../sync/after-run.js';
import type { SyncRun } from '../sync/types.js';
import { nextMappingStatus } from './document.js';
import { openStatusStore } from './index.js';
import { RECENT_RUNS, type StatusStore } from './types.js';

export interface RecordRunRequest {
  readonly status: StatusStore;
  readonly store: RuntimeStore;
  readonly run: SyncRun;
  readonly now?: Date;
}

/**
 * Updates the mapping's entry after `run`. The store's latest runs are read first (outside the
 * document's lock), so a new entry, or one a crash left behind, starts from the real history.
 */
export async function recordRun(req: RecordRunRequest): Promise<void> {
  const { run } = req;
  if (run.status === 'in_progress') return;
  // In-progress runs of the mapping may sit among the newest: read a little more than the window.
  const history = await req.store.listRuns({ mappings: [run.mapping], limit: RECENT_RUNS * 2 });
  const now = req.now ?? new Date();
  await req.status.update({
    kind: 'mapping',
    name: run.mapping,
    update: (previous) => nextMappingStatus({ previous, run, history, now }),
  });
}

/** After every run (`backflow sync`, replay, the agent): the mapping's entry in the status document. */
export const statusSubscriber: RunSubscriber = async (ctx) => {
  if (ctx.run.status === 'in_progress') return;
  const status = await openStatusStore(ctx.configDir, await ctx.settings());
  try {
    await recordRun({ status, store: ctx.store, run: ctx.run });
  } finally {
    await status.close();
  }
};
