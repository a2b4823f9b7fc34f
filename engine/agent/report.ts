import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { afterRun } from '../sync/after-run.js';
import type { SyncRun } from '../sync/types.js';
import { type AgentLogger, runFields, runSummary } from './logger.js';
import type { AgentMetrics } from './metrics.js';

export interface FinishedRunRequest {
  readonly run: SyncRun;
  readonly state: StateDocument | null;
  readonly store: RuntimeStore;
  readonly configDir: string;
  readonly log: AgentLogger;
  /** Absent for runs this agent did not execute (an abandoned one): they are not counted. */
  readonly metrics?: AgentMetrics;
  /** The log event (`run_finished`, or none when the caller logged the run itself). */
  readonly event?: 'run_finished';
}

/** What follows every run the agent sees end: its metrics, its log line, then the after-run subscribers (alerts, status, GitHub). */
export async function finishedRun(req: FinishedRunRequest): Promise<void> {
  const { run, log } = req;
  req.metrics?.observeRun(run);
  if (req.event)
    log.log(
      run.status === 'failed' ? 'error' : run.status === 'partial_success' ? 'warn' : 'info',
      req.event,
      runSummary(run),
      runFields(run),
    );
  await afterRun({
    run,
    state: req.state,
    store: req.store,
    configDir: req.configDir,
    log: (m) => log.warn('after_run', m, { run_id: run.id, mapping: run.mapping }),
  });
}
