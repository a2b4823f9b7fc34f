import { UserError } from '../../engine/errors.js';
import { listOverview } from '../../engine/sync/overview.js';
import { type IO, print, printJson } from '../io.js';
import { renderRunsTable, renderRunText } from '../render/run-text.js';
import { withRuntime } from './sync.js';

export interface SyncsOptions {
  readonly dir: string;
  readonly status?: string[];
  readonly since?: string;
  readonly until?: string;
  readonly period?: string;
  readonly model?: string[];
  readonly destination?: string[];
  readonly mapping?: string[];
  readonly mappingStatus?: string;
  readonly search?: string;
  readonly all?: boolean;
  readonly limit?: string;
  readonly json?: boolean;
  /** A plain table even on a terminal. */
  readonly plain?: boolean;
}

/** `backflow syncs`: the sync overview — latest run per mapping, filtered (engine/sync/overview.ts). */
export async function syncsCommand(io: IO, opts: SyncsOptions): Promise<number> {
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    const runs = await listOverview({ store, state, options: opts });
    if (opts.json) printJson(io, runs);
    else if (io.interactive && !opts.plain) {
      // On a terminal: the interactive view (ink is loaded only here; JSON and pipes never touch it).
      const [{ render }, { createElement }, { SyncsView }] = await Promise.all([
        import('ink'),
        import('react'),
        import('../ui/syncs-view.js'),
      ]);
      const app = render(
        createElement(SyncsView, {
          rows: runs,
          loadFailed: (id: string) => store.listRunRecords(id, { status: 'failed', limit: 100 }),
        }),
      );
      await app.waitUntilExit();
    } else print(io, renderRunsTable(runs, io.style));
    return 0;
  });
}

/** `backflow syncs show RUN_ID`: a run's detail with its failed records. */
export async function syncsShowCommand(
  io: IO,
  opts: { dir: string; runId: string; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ store }) => {
    const run = await store.getRun(opts.runId);
    if (!run)
      throw new UserError(`no sync run ${opts.runId}`, { hint: 'list runs with `backflow syncs --all`' });
    const failed = await store.listRunRecords(run.id, { status: 'failed', limit: 100 });
    if (opts.json) printJson(io, { ...run, failed_records: failed });
    else print(io, renderRunText(run, io.style, failed));
    return 0;
  });
}
