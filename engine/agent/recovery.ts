import { UserError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { recommendedAction } from '../sync/errors.js';
import type { SyncRun } from '../sync/types.js';
import { currentHolder, type LeaseRow, Leases } from './leases.js';
import type { AgentLogger } from './logger.js';
import { finishedRun } from './report.js';

/** The lease that serialises a mapping's syncs across agents. */
export const mappingLease = (mapping: string) => `mapping:${mapping}`;

/**
 * For one-off commands (`backflow sync`, `replay`) next to running agents: runs `work` holding the
 * mapping's lease, so no agent syncs the mapping meanwhile; a lease another process holds is a
 * UserError naming it. (Wiring it into cli/commands/sync.ts is the one step left.)
 */
export async function withMappingLease<T>(
  req: {
    readonly store: RuntimeStore;
    readonly mapping: string;
    readonly leaseMs?: number;
    readonly signal?: AbortSignal;
  },
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const leases = new Leases(
    req.store.sql,
    currentHolder(process.env.BACKFLOW_AGENT_NAME),
    req.leaseMs ?? 60_000,
  );
  const outcome = await leases.withLease(mappingLease(req.mapping), ({ signal }) => work(signal), {
    ...(req.signal ? { signal: req.signal } : {}),
  });
  if (outcome.ran) return outcome.value;
  const holder = outcome.heldBy === 'this agent' ? 'this process' : outcome.heldBy.holder;
  throw new UserError(`mapping ${req.mapping} is being synced by ${holder}`, {
    hint: 'wait for that sync to finish, or ask the agent: POST /api/mappings/NAME/sync',
  });
}

/** Says so when a mapping's lease came from another (dead or stalled) agent rather than free. */
export function logTakeover(log: AgentLogger, mapping: string, previous: LeaseRow | undefined): void {
  if (previous)
    log.info('lease_taken_over', `${mapping}: took over from ${previous.holder}`, {
      mapping,
      previous_holder: previous.holder,
    });
}

export interface AbandonRequest {
  readonly store: RuntimeStore;
  readonly run: SyncRun;
  readonly state: StateDocument | null;
  readonly configDir: string;
  readonly log: AgentLogger;
  readonly now?: Date;
}

/**
 * Marks a run left `in_progress` by a process that stopped (kill -9, a crash, a lost machine) as
 * `failed` with the error `abandoned`, and drops its working set. Its snapshot was never committed,
 * so the next sync of the mapping re-sends every record the destination did not confirm.
 */
export async function abandonRun(req: AbandonRequest): Promise<SyncRun> {
  const now = req.now ?? new Date();
  await req.store.discardStage({ runId: req.run.id });
  const run: SyncRun = {
    ...req.run,
    status: 'failed',
    finished_at: now.toISOString(),
    duration_ms: Math.max(0, now.getTime() - Date.parse(req.run.started_at)),
    errors: [
      ...req.run.errors,
      {
        code: 'abandoned',
        message:
          'the process running this sync stopped before it finished (killed, crashed or lost its lease); nothing it loaded was committed',
        records: 0,
        recommended_action: recommendedAction('abandoned', 'run'),
        sample_payloads: [],
      },
    ],
  };
  await req.store.updateRun(run);
  req.log.warn('run_abandoned', `${run.mapping}: run ${run.id} (started ${run.started_at}) was abandoned`, {
    run_id: run.id,
    mapping: run.mapping,
    started_at: run.started_at,
  });
  await finishedRun({ run, state: req.state, store: req.store, configDir: req.configDir, log: req.log });
  return run;
}

/**
 * Abandons the unfinished runs of `mapping`. Call it holding the mapping's lease: no live agent
 * runs the mapping then, so whatever is still `in_progress` belongs to one that stopped.
 */
export async function abandonUnfinished(
  req: Omit<AbandonRequest, 'run'> & { readonly mapping: string },
): Promise<number> {
  const runs = await req.store.listRuns({ mappings: [req.mapping], status: ['in_progress'] });
  for (const run of runs) await abandonRun({ ...req, run });
  return runs.length;
}

/**
 * The start-up (and periodic) sweep: every run still `in_progress` whose mapping's lease nobody
 * alive holds is abandoned. A run whose lease another agent holds and renews is left to it.
 */
export async function recoverRuns(
  req: Omit<AbandonRequest, 'run'> & { readonly leases: Leases },
): Promise<number> {
  const unfinished = await req.store.listUnfinishedRuns();
  let abandoned = 0;
  for (const mapping of new Set(unfinished.map((r) => r.mapping))) {
    const outcome = await req.leases.withLease(mappingLease(mapping), async ({ previous }) => {
      logTakeover(req.log, mapping, previous);
      return abandonUnfinished({ ...req, mapping });
    });
    if (outcome.ran) abandoned += outcome.value;
  }
  return abandoned;
}
