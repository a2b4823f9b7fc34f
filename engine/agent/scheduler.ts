import { randomUUID } from 'node:crypto';
import type { Schedule } from '../config/types.gen.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { afterRun } from '../sync/after-run.js';
import { runSync } from '../sync/run.js';
import type { RunTrigger, SyncRun } from '../sync/types.js';
import type { Leases } from './leases.js';
import { type AgentLogger, runFields, runSummary } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import { abandonUnfinished, mappingLease } from './recovery.js';
import { dueAt, MAX_EARLY_RETRIES, NEVER_RAN, type Timing, timingOf } from './schedule.js';

/** How long a mapping whose lease another agent holds is left alone before trying again. */
const BUSY_BACKOFF_MS = 1_000;
/** How long a mapping whose sync could not even start (a store error) is left alone. */
const ERROR_BACKOFF_MS = 30_000;
/** The scheduler looks at what is due this often (and at once when something changes). */
export const TICK_MS = 250;

export interface SchedulerRequest {
  readonly store: RuntimeStore;
  readonly leases: Leases;
  readonly configDir: string;
  /** The applied state the agent runs now (replaced when a new apply is picked up). */
  readonly state: () => StateDocument | null;
  readonly concurrency: number;
  readonly log: AgentLogger;
  readonly metrics: AgentMetrics;
  readonly env?: NodeJS.ProcessEnv;
}

/** A sync asked for through the API, waiting for a slot and the mapping's lease. */
export interface RequestedSync {
  readonly id: string;
  readonly mapping: string;
  readonly requested_at: string;
  readonly status: 'queued';
  /** Settles with the run once it has finished (undefined when the agent stopped first). */
  readonly done: Promise<SyncRun | undefined>;
}

interface Requested extends RequestedSync {
  settle(run: SyncRun | undefined): void;
}

interface Job {
  readonly mapping: string;
  readonly runId: string;
  readonly controller: AbortController;
  startedAt?: string;
  trigger?: RunTrigger;
  promise?: Promise<void>;
}

interface MappingEntry {
  readonly name: string;
  readonly enabled?: boolean;
  readonly schedule?: Schedule;
}

export function newRunId(now = new Date()): string {
  return `run_${now
    .toISOString()
    .replace(/[-:T.Z]/g, '')
    .slice(0, 14)}_${randomUUID().slice(0, 8)}`;
}

function mappingsOf(state: StateDocument | null): MappingEntry[] {
  return (state?.resources ?? [])
    .filter((r) => r.kind === 'mapping')
    .map((r) => ({ name: r.name, ...(r.body as { enabled?: boolean; schedule?: Schedule }) }));
}

/**
 * Decides what runs when: scheduled and retried syncs of enabled mappings and syncs asked for
 * through the API, at most `concurrency` at once, each under its mapping's lease so that agents
 * sharing a store never run one mapping twice at the same time.
 */
export class Scheduler {
  private readonly timings = new Map<string, Timing>();
  private readonly loading = new Set<string>();
  private readonly jobs = new Map<string, Job>();
  private readonly requests = new Map<string, Requested>();
  private readonly notBefore = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** In `--once` mode: the mappings still to run; nothing else is started. */
  private onceLeft: Set<string> | undefined;
  readonly finished: SyncRun[] = [];

  constructor(private readonly req: SchedulerRequest) {}

  /** Starts ticking. */
  start(): void {
    const loop = () => {
      this.tick();
      if (!this.stopping) this.timer = setTimeout(loop, TICK_MS);
    };
    loop();
  }

  /** Runs every mapping due now once, then resolves with the finished runs (`--once`). */
  async runDueOnce(): Promise<readonly SyncRun[]> {
    const entries = mappingsOf(this.req.state());
    await Promise.all(entries.map((m) => this.loadTiming(m.name)));
    const now = Date.now();
    this.onceLeft = new Set(
      entries
        .filter((m) => (dueAt(m, this.timings.get(m.name) ?? NEVER_RAN, now)?.at ?? Infinity) <= now)
        .map((m) => m.name),
    );
    for (;;) {
      const started = this.tick();
      // Done when nothing runs and nothing more could start (what is left is busy elsewhere).
      if (this.jobs.size === 0 && (this.onceLeft.size === 0 || started === 0)) break;
      await Promise.race([...[...this.jobs.values()].map((j) => j.promise), sleep(TICK_MS, true)]);
    }
    for (const name of this.onceLeft)
      this.req.log.info('sync_skipped', `${name}: due, but could not start (busy on another agent)`, {
        mapping: name,
      });
    return this.finished;
  }

  /** The applied state changed: drop what is gone, forget timings so they are read again. */
  stateChanged(): void {
    const names = new Set(mappingsOf(this.req.state()).map((m) => m.name));
    for (const name of [...this.timings.keys()]) if (!names.has(name)) this.timings.delete(name);
    for (const [name, r] of this.requests)
      if (!names.has(name)) {
        this.requests.delete(name);
        r.settle(undefined);
      }
    this.wake();
  }

  /** Queues a sync of `mapping` (coalesced with one already queued); it starts as soon as it can. */
  request(mapping: string): RequestedSync {
    const existing = this.requests.get(mapping);
    if (existing) return existing;
    let settle!: (run: SyncRun | undefined) => void;
    const done = new Promise<SyncRun | undefined>((resolve) => {
      settle = resolve;
    });
    const r: Requested = {
      id: newRunId(),
      mapping,
      requested_at: new Date().toISOString(),
      status: 'queued',
      done,
      settle,
    };
    this.requests.set(mapping, r);
    this.notBefore.delete(mapping);
    this.wake();
    return r;
  }

  /** A queued (not yet started) request by its future run id. */
  queued(id: string): RequestedSync | undefined {
    return [...this.requests.values()].find((r) => r.id === id);
  }

  /** Runs in flight on this agent. */
  running(): readonly { mapping: string; run_id: string; trigger?: RunTrigger; started_at?: string }[] {
    return [...this.jobs.values()].map((j) => ({
      mapping: j.mapping,
      run_id: j.runId,
      ...(j.trigger ? { trigger: j.trigger } : {}),
      ...(j.startedAt ? { started_at: j.startedAt } : {}),
    }));
  }

  get size(): number {
    return this.jobs.size;
  }

  /**
   * Stops starting work. In-flight syncs get `graceMs` to finish; then they are aborted (each is
   * recorded as failed/interrupted with its snapshot untouched) and awaited for up to `abortMs`.
   * Resolves true when every sync has ended.
   */
  async stop(graceMs: number, abortMs: number): Promise<boolean> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    for (const r of this.requests.values()) r.settle(undefined);
    this.requests.clear();
    const all = () => Promise.allSettled([...this.jobs.values()].map((j) => j.promise)).then(() => true);
    if (this.jobs.size === 0) return true;
    if (graceMs > 0 && (await Promise.race([all(), sleep(graceMs).then(() => false)]))) return true;
    for (const j of this.jobs.values()) j.controller.abort(new Error('the agent is shutting down'));
    return Promise.race([all(), sleep(abortMs).then(() => false)]);
  }

  /** Aborts every in-flight sync at once (a second signal). */
  abortAll(): void {
    for (const j of this.jobs.values()) j.controller.abort(new Error('the agent is shutting down'));
  }

  private wakeTimer: NodeJS.Immediate | undefined;
  private wake(): void {
    if (this.stopping || this.wakeTimer) return;
    this.wakeTimer = setImmediate(() => {
      this.wakeTimer = undefined;
      this.tick();
    });
  }

  /** Starts what is due and fits; returns how many syncs it started. */
  private tick(): number {
    if (this.stopping) return 0;
    let started = 0;
    const now = Date.now();
    const candidates: { name: string; at: number; trigger: RunTrigger; request?: Requested }[] = [];
    for (const r of this.requests.values())
      candidates.push({ name: r.mapping, at: 0, trigger: 'api', request: r });
    for (const m of mappingsOf(this.req.state())) {
      if (this.requests.has(m.name) || (this.onceLeft && !this.onceLeft.has(m.name))) continue;
      const t = this.timings.get(m.name);
      if (!t) {
        void this.loadTiming(m.name);
        continue;
      }
      const due = dueAt(m, t, now);
      if (due && due.at <= now) candidates.push({ name: m.name, at: due.at, trigger: due.trigger });
    }
    candidates.sort((a, b) => a.at - b.at);
    for (const c of candidates) {
      if (this.jobs.size >= this.req.concurrency) break;
      if (this.jobs.has(c.name) || (this.notBefore.get(c.name) ?? 0) > now) continue;
      this.onceLeft?.delete(c.name);
      this.startJob(c.name, c.request);
      started++;
    }
    return started;
  }

  private async loadTiming(mapping: string): Promise<Timing> {
    if (this.loading.has(mapping)) return this.timings.get(mapping) ?? NEVER_RAN;
    this.loading.add(mapping);
    try {
      const t = timingOf(
        await this.req.store.listRuns({ mappings: [mapping], limit: MAX_EARLY_RETRIES + 2 }),
      );
      this.timings.set(mapping, t);
      return t;
    } catch (e) {
      this.req.log.error('store_error', `cannot read the runs of ${mapping}: ${(e as Error).message}`, {
        mapping,
      });
      this.notBefore.set(mapping, Date.now() + ERROR_BACKOFF_MS);
      return NEVER_RAN;
    } finally {
      this.loading.delete(mapping);
    }
  }

  private startJob(mapping: string, request: Requested | undefined): void {
    const job: Job = { mapping, runId: request?.id ?? newRunId(), controller: new AbortController() };
    this.jobs.set(mapping, job);
    job.promise = this.execute(job, request)
      .catch((e: unknown) => {
        this.notBefore.set(mapping, Date.now() + ERROR_BACKOFF_MS);
        this.req.log.error('sync_error', `${mapping}: the sync could not run: ${(e as Error).message}`, {
          mapping,
        });
      })
      .finally(() => {
        this.jobs.delete(mapping);
        this.wake();
      });
  }

  private async execute(job: Job, request: Requested | undefined): Promise<void> {
    const { store, leases, log } = this.req;
    const state = this.req.state();
    const outcome = await leases.withLease(
      mappingLease(job.mapping),
      async ({ signal, previous, setRun }) => {
        if (previous)
          log.info('lease_taken_over', `${job.mapping}: took over from ${previous.holder}`, {
            mapping: job.mapping,
            previous_holder: previous.holder,
          });
        await abandonUnfinished({ store, state, configDir: this.req.configDir, log, mapping: job.mapping });
        const timing = await this.loadTiming(job.mapping);
        const entry = mappingsOf(state).find((m) => m.name === job.mapping);
        const due = entry ? dueAt(entry, timing, Date.now()) : undefined;
        // Under the lease, with fresh history: another agent may have just run it.
        if (!request && (!due || due.at > Date.now())) return undefined;
        if (request) this.requests.delete(job.mapping);
        job.trigger = request ? 'api' : (due?.trigger ?? 'schedule');
        job.startedAt = new Date().toISOString();
        setRun(job.runId);
        log.info('run_started', `${job.mapping}: ${job.trigger} sync started [${job.runId}]`, {
          run_id: job.runId,
          mapping: job.mapping,
          trigger: job.trigger,
        });
        const run = await runSync({
          mapping: job.mapping,
          state,
          configDir: this.req.configDir,
          store,
          trigger: job.trigger,
          runId: job.runId,
          signal,
          ...(this.req.env ? { env: this.req.env } : {}),
        }).catch((e: unknown) => {
          request?.settle(undefined); // it was taken off the queue: its waiter learns now
          throw e;
        });
        const failures = run.status === 'failed' ? timing.failures + 1 : 0;
        this.timings.set(job.mapping, { ...timingOf([run]), failures });
        return run;
      },
      {
        signal: job.controller.signal,
        onLost: (reason) =>
          log.warn('lease_lost', `${job.mapping}: ${reason}; aborting its sync`, { mapping: job.mapping }),
      },
    );
    if (!outcome.ran) {
      this.notBefore.set(job.mapping, Date.now() + BUSY_BACKOFF_MS);
      if (this.onceLeft)
        log.info('sync_skipped', `${job.mapping}: due, but another agent is running it`, {
          mapping: job.mapping,
        });
      return;
    }
    const run = outcome.value;
    if (!run) return;
    this.finished.push(run);
    this.req.metrics.observeRun(run);
    log.log(
      run.status === 'failed' ? 'error' : run.status === 'partial_success' ? 'warn' : 'info',
      'run_finished',
      runSummary(run),
      runFields(run),
    );
    request?.settle(run);
    await afterRun({
      run,
      state,
      store,
      configDir: this.req.configDir,
      log: (m) => log.warn('after_run', m, { run_id: run.id, mapping: run.mapping }),
    });
  }
}

/** An unref'd sleep does not keep the process alive; `--once` needs one that does. */
function sleep(ms: number, keepAlive = false): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (!keepAlive) t.unref();
  });
}
