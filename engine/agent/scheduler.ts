import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { runSync } from '../sync/run.js';
import type { RunTrigger, SyncRun } from '../sync/types.js';
import type { Leases } from './leases.js';
import type { AgentLogger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import { abandonUnfinished, logTakeover, mappingLease } from './recovery.js';
import { finishedRun } from './report.js';
import { type Requested, type RequestedSync, SyncRequests } from './requests.js';
import {
  dueAt,
  MAX_EARLY_RETRIES,
  type MappingEntry,
  mappingsOf,
  NEVER_RAN,
  newRunId,
  type Timing,
  timingOf,
} from './schedule.js';

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

interface Job {
  readonly mapping: string;
  readonly runId: string;
  readonly controller: AbortController;
  startedAt?: string;
  trigger?: RunTrigger;
  promise?: Promise<void>;
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
  private readonly requests = new SyncRequests();
  private readonly notBefore = new Map<string, number>();
  /** Due times by mapping, valid while its timing and schedule are the same objects/text (cron is not free). */
  private readonly dueCache = new Map<
    string,
    { timing: Timing; key: string; due: ReturnType<typeof dueAt> }
  >();
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
    this.requests.drop((name) => names.has(name));
    this.wake();
  }

  /** Queues a sync of `mapping` (coalesced with one already queued); it starts as soon as it can. */
  request(mapping: string): RequestedSync {
    const r = this.requests.add(mapping);
    this.notBefore.delete(mapping);
    this.wake();
    return r;
  }

  /** A queued (not yet started) request by its future run id. */
  queued(id: string): RequestedSync | undefined {
    return this.requests.byId(id);
  }

  /** Runs in flight on this agent (started, not only waiting for their lease). */
  running(): readonly { mapping: string; run_id: string; trigger?: RunTrigger; started_at?: string }[] {
    return [...this.jobs.values()]
      .filter((j) => j.startedAt !== undefined)
      .map((j) => ({
        mapping: j.mapping,
        run_id: j.runId,
        ...(j.trigger ? { trigger: j.trigger } : {}),
        started_at: j.startedAt,
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
    this.requests.drop();
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
    for (const r of this.requests.all())
      candidates.push({ name: r.mapping, at: 0, trigger: 'api', request: r });
    for (const m of mappingsOf(this.req.state())) {
      if (this.requests.has(m.name) || (this.onceLeft && !this.onceLeft.has(m.name))) continue;
      const t = this.timings.get(m.name);
      if (!t) {
        if ((this.notBefore.get(m.name) ?? 0) <= now) void this.loadTiming(m.name);
        continue;
      }
      const due = this.cachedDue(m, t, now);
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

  private cachedDue(m: MappingEntry, t: Timing, now: number): ReturnType<typeof dueAt> {
    const key = `${m.enabled !== false}${JSON.stringify(m.schedule)}`;
    const hit = this.dueCache.get(m.name);
    if (hit && hit.timing === t && hit.key === key) return hit.due;
    const due = dueAt(m, t, now);
    this.dueCache.set(m.name, { timing: t, key, due });
    return due;
  }

  /** Reads the mapping's recent runs; `fresh` (under its lease) does not settle for a read in flight. */
  private async loadTiming(mapping: string, fresh = false): Promise<Timing> {
    if (this.loading.has(mapping) && !fresh) return this.timings.get(mapping) ?? NEVER_RAN;
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
        logTakeover(log, job.mapping, previous);
        await abandonUnfinished({ store, state, configDir: this.req.configDir, log, mapping: job.mapping });
        const timing = await this.loadTiming(job.mapping, true);
        const entry = mappingsOf(state).find((m) => m.name === job.mapping);
        const due = entry ? dueAt(entry, timing, Date.now()) : undefined;
        // Under the lease, with fresh history: another agent may have just run it.
        if (!request && (!due || due.at > Date.now())) return undefined;
        if (request) this.requests.take(job.mapping);
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
    request?.settle(run);
    await finishedRun({
      run,
      state,
      store,
      configDir: this.req.configDir,
      log,
      metrics: this.req.metrics,
      event: 'run_finished',
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
