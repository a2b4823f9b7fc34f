/**
 * Runs the batches that are due: per queue (integration, segment), strictly in sequence order,
 * one rendered query per batch. Delivery is at-least-once: a batch is recorded as formed and
 * started before its query runs and marked delivered only after the query succeeded, so a process
 * killed in between runs the same batch again on restart (the templates are upserts and deletes by
 * key, so running one twice leaves the same rows). Delivered batches leave the store in bulk
 * (batches.ts: `purgeDelivered`).
 */
import { performance } from 'node:perf_hooks';
import type { Session } from '../../providers/sdk.js';
import { closeQuietly, openSession } from '../connections.js';
import { errorMessage, ProviderError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { StoreSql } from '../store/sql.js';
import type { RuntimeStore } from '../store/types.js';
import { alertSegmentFailure } from './alert.js';
import {
  failBatch,
  listBatches,
  markAlerted,
  markDelivered,
  markStarted,
  positionAfter,
  pruneQueryLog,
  purgeDelivered,
  unclaimBatch,
} from './batches.js';
import { MAX_ATTEMPTS, nextAttemptAt } from './batching.js';
import { catchUpApplyEffects } from './effects.js';
import { acquireLease, LEASE_MS, newOwner, type Queue, releaseLease, renewLease } from './lease.js';
import {
  type Formed,
  formBatch,
  type NextBatchRequest,
  type Prepared,
  renderBatch,
  type Waiting,
} from './next-batch.js';
import { type QueueSummary, queueSummaries } from './queue.js';
import { BatchRenderer } from './render-batch.js';
import { findIntegration, type ResolvedIntegration, resolveIntegration } from './resolve.js';
import type { BatchOutcome, FlushReport, QueueWaiting } from './types.js';

export interface FlushRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly configDir: string;
  /** The time due-ness and backoff are judged at (default: the clock). */
  readonly now?: Date;
  /** Stops between batches; a query cut short leaves its batch to run again. */
  readonly signal?: AbortSignal;
  /** Only this integration's queues. */
  readonly integration?: string;
  /** Only this segment's queues. */
  readonly segment?: string;
  /** Also batches not due yet: waiting for size or timeout, or backing off after a failure (`segments flush --all`). */
  readonly all?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  /** Called after every query (progress for terminals and the agent's log). */
  readonly onBatch?: (outcome: BatchOutcome) => void;
}

/**
 * Delivered batches are moved out of the queue this many at a time (and when a drain starts or
 * ends): each batch's own commit then only marks it.
 */
const PURGE_EVERY = 32;

/** The query log keeps this much history for `segments stats`. */
const QUERY_LOG_DAYS = 30;
let lastPrune = 0;

/** Runs every batch that is due (all of them with `all`), queue by queue. */
export async function flushDue(req: FlushRequest): Promise<FlushReport> {
  const started = new Date();
  const flush = new Flush(req);
  const warnings = [
    ...(await catchUpApplyEffects({
      store: req.store,
      state: req.state,
      ...(req.now ? { now: req.now } : {}),
    })),
  ];
  const queues = await queueSummaries(req.store.sql, req.integration);
  if (req.integration !== undefined && queues.length === 0) resolveIntegration(req.state, req.integration);
  try {
    for (const q of queues) if (req.segment === undefined || q.segment === req.segment) await flush.queue(q);
  } finally {
    await flush.close();
  }
  if (Date.now() - lastPrune > 3_600_000) {
    lastPrune = Date.now();
    await pruneQueryLog(
      req.store.sql,
      new Date(flush.now().getTime() - QUERY_LOG_DAYS * 86_400_000).toISOString(),
    );
  }
  const ok = flush.outcomes.filter((o) => o.status === 'ok');
  return {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    queries: ok.length,
    failed: flush.outcomes.filter((o) => o.status === 'failed').length,
    profiles: ok.reduce((n, o) => n + o.profiles, 0),
    batches: flush.outcomes,
    waiting: flush.waiting,
    warnings: [...warnings, ...flush.warnings],
  };
}

interface Result {
  readonly status: 'ok' | 'failed' | 'skipped' | 'aborted';
  readonly at: string;
  readonly durationMs: number;
  readonly error?: string;
}

/** A drain's position in its queue, for forming the batches after the running one. */
interface Ahead extends Pick<NextBatchRequest, 'queue' | 'integration' | 'existing' | 'cursor'> {
  /** Batches this drain marked delivered (every PURGE_EVERY, they are moved out of the queue). */
  marked: number;
}

interface Finished {
  readonly prepared: Prepared;
  readonly result: Result;
}

class Flush {
  readonly outcomes: BatchOutcome[] = [];
  readonly waiting: QueueWaiting[] = [];
  readonly warnings: string[] = [];
  private readonly owner = newOwner();
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly renderer = new BatchRenderer();

  constructor(private readonly req: FlushRequest) {}

  now(): Date {
    return this.req.now ?? new Date();
  }

  private wait(q: Queue, reason: QueueWaiting['reason'], until?: string): void {
    this.waiting.push({
      integration: q.integration,
      segment: q.segment,
      reason,
      ...(until ? { until } : {}),
    });
  }

  async queue(q: QueueSummary): Promise<void> {
    const sql = this.req.store.sql;
    if (this.req.signal?.aborted) return this.wait(q, 'aborted');
    if (q.events <= 0) return this.purgeOnly(q);
    const integration = findIntegration(this.req.state, q.integration) ?? (await this.fromSnapshot(q));
    if (!integration) return this.wait(q, 'integration_missing');
    if (!integration.enabled) return this.wait(q, 'paused');
    if (!(await acquireLease(sql, q, this.owner))) return this.wait(q, 'locked');
    try {
      await this.drain(q, integration);
    } finally {
      await releaseLease(sql, q, this.owner).catch(() => undefined);
    }
  }

  /** A queue holding only delivered batches (a flush that stopped before moving them out): moves them out. */
  private async purgeOnly(q: Queue): Promise<void> {
    const sql = this.req.store.sql;
    if (!(await acquireLease(sql, q, this.owner))) return;
    try {
      await purgeDelivered(sql, q);
    } finally {
      await releaseLease(sql, q, this.owner).catch(() => undefined);
    }
  }

  /** A removed integration still runs the events that carry its last body (a delete_segment from apply). */
  private async fromSnapshot(q: Queue): Promise<ResolvedIntegration | undefined> {
    const [row] = await this.req.store.sql.all<{ snapshot: string }>(
      `SELECT snapshot FROM segment_events WHERE integration = ? AND segment = ? AND snapshot IS NOT NULL
        ORDER BY seq DESC LIMIT 1`,
      [q.integration, q.segment],
    );
    return row ? findIntegration(null, q.integration, JSON.parse(row.snapshot)) : undefined;
  }

  /**
   * Runs the queue's batches in order. While one batch's query runs on the connector, the
   * previous batch is recorded as delivered and the next one is formed (in one store
   * transaction) and rendered, so the store's work overlaps the connector's. Queries themselves
   * never overlap: order per profile holds.
   */
  private async drain(q: QueueSummary, integration: ResolvedIntegration): Promise<void> {
    const sql = this.req.store.sql;
    // Delivered batches left by a flush that stopped before moving them out.
    await purgeDelivered(sql, q);
    const existing = await listBatches(sql, q);
    const state = {
      after: positionAfter(existing),
      waitingProfiles: q.waitingProfiles,
      lost: false,
    };
    const renew = setInterval(() => {
      renewLease(sql, q, this.owner).then(
        (held) => {
          if (!held) state.lost = true;
        },
        () => undefined,
      );
    }, LEASE_MS / 3);
    renew.unref();
    const ahead: Ahead = { queue: q, integration, existing, cursor: state, marked: 0 };
    try {
      let next = await this.advance(ahead, undefined, true);
      let done: Finished | undefined;
      while (next && 'batch' in next) {
        if (state.lost) break;
        if (this.req.signal?.aborted) {
          // A batch formed ahead and never started goes back to the queue.
          if (next.fresh) await unclaimBatch(sql, next.batch);
          break;
        }
        const current = next;
        const running = this.execute(integration, current);
        // Let the driver send the query before the store's work below runs on this thread.
        await new Promise((resolve) => setImmediate(resolve));
        try {
          const more = !(this.req.signal?.aborted || state.lost);
          next = await this.advance(ahead, done, more);
          done = undefined;
        } catch (e) {
          await running;
          throw e;
        }
        const result = await running;
        if (result.status === 'ok' || result.status === 'skipped') {
          done = { prepared: current, result };
          continue;
        }
        // The queue stops at a failed or interrupted batch; one formed ahead goes back to the queue.
        if (next && 'batch' in next && next.fresh) await unclaimBatch(sql, next.batch);
        await this.finish(integration, { prepared: current, result });
        return;
      }
      if (done) await this.advance(ahead, done, false);
      if (state.lost) this.wait(q, 'locked');
      else if (this.req.signal?.aborted) this.wait(q, 'aborted');
      else if (next && !('batch' in next)) this.wait(q, next.reason, next.until);
    } finally {
      clearInterval(renew);
      // What this drain delivered leaves the queue now (while the lease is still ours).
      if (!state.lost) await purgeDelivered(sql, q).catch(() => undefined);
    }
  }

  /**
   * In one store transaction: records `done` (a delivered or skipped batch) and, with `form`,
   * forms the next batch; then renders it. One commit per batch instead of two.
   */
  private async advance(
    ahead: Ahead,
    done: Finished | undefined,
    form: boolean,
  ): Promise<Prepared | Waiting | undefined> {
    let formed: Formed | Waiting | undefined;
    let outcome: BatchOutcome | undefined;
    await this.req.store.sql.transaction(async (tx) => {
      if (done) {
        outcome = await this.complete(tx, done);
        if (++ahead.marked % PURGE_EVERY === 0) await purgeDelivered(tx, ahead.queue);
      }
      if (form) formed = await formBatch({ ...ahead, sql: tx, all: !!this.req.all, now: this.now() });
    });
    if (outcome) this.record(outcome);
    if (!formed || !('batch' in formed)) return formed;
    return renderBatch({ integration: ahead.integration, renderer: this.renderer }, formed);
  }

  /**
   * The store's record of a delivered or skipped batch: marked (its events leave the queue with the
   * next purge); the outcome to report.
   */
  private async complete(sql: StoreSql, { prepared, result }: Finished): Promise<BatchOutcome> {
    const { batch, resumed } = prepared;
    const profiles = prepared.profiles.length;
    const attempt = batch.attempts + 1;
    const durationMs = result.durationMs;
    const base = {
      integration: batch.integration,
      segment: batch.segment,
      kind: batch.kind,
      profiles,
      attempt,
    };
    const skipped = result.status === 'skipped';
    const message = result.error ?? 'skipped';
    await markDelivered(sql, batch, {
      ...base,
      at: result.at,
      durationMs,
      ok: !skipped,
      ...(skipped ? { message } : {}),
    });
    return {
      ...base,
      resumed,
      duration_ms: Math.round(durationMs),
      status: skipped ? 'skipped' : 'ok',
      ...(skipped ? { error: message } : {}),
    };
  }

  /** Runs one batch's (already rendered) query. Never throws: the result says what happened. */
  private async execute(integration: ResolvedIntegration, p: Prepared): Promise<Result> {
    const at = this.now().toISOString();
    const t0 = performance.now();
    const { batch } = p;
    const result = (status: Result['status'], error?: string): Result => ({
      status,
      at,
      durationMs: performance.now() - t0,
      ...(error !== undefined ? { error } : {}),
    });
    if ('skip' in p.query) return result('skipped', p.query.skip);
    if ('error' in p.query) return result('failed', p.query.error);
    try {
      if (batch.startedAt === null) await markStarted(this.req.store.sql, batch, at);
      const session = await this.session(integration);
      if (!session.sql)
        throw new ProviderError(`${integration.connector.address} cannot run SQL`, {
          code: 'not_a_connector',
          retryable: false,
        });
      await session.sql.execute({
        sql: p.query.sql,
        ...(this.req.signal ? { signal: this.req.signal } : {}),
      });
      return result('ok');
    } catch (e) {
      return result(this.req.signal?.aborted ? 'aborted' : 'failed', errorMessage(e));
    }
  }

  /** Records a batch's result: delivered or skipped (its events leave the queue), failed (it stays, with backoff), aborted. */
  private async finish(integration: ResolvedIntegration, { prepared, result }: Finished): Promise<void> {
    const sql = this.req.store.sql;
    const { batch, resumed } = prepared;
    const queue = { integration: batch.integration, segment: batch.segment };
    const attempt = batch.attempts + 1;
    const profiles = prepared.profiles.length;
    const base = {
      ...queue,
      kind: batch.kind,
      profiles,
      attempt,
      resumed,
      duration_ms: Math.round(result.durationMs),
    };
    const log = {
      ...queue,
      kind: batch.kind,
      at: result.at,
      profiles,
      durationMs: result.durationMs,
      attempt,
    };
    switch (result.status) {
      case 'ok':
      case 'skipped':
        this.record(await this.complete(sql, { prepared, result }));
        return;
      case 'aborted':
        // Cut short by a shutdown: left started, so the next flush runs it again at once.
        this.wait(queue, 'aborted');
        return;
      case 'failed': {
        const message = result.error ?? 'failed';
        const next = nextAttemptAt(this.now(), attempt).toISOString();
        await failBatch(sql, batch, {
          attempts: attempt,
          nextAttemptAt: next,
          log: { ...log, ok: false, message },
        });
        this.record({ ...base, status: 'failed', error: message, next_attempt_at: next });
        this.wait(queue, 'failed', next);
        if (attempt >= MAX_ATTEMPTS && batch.alertedAt === null) {
          const warning = await alertSegmentFailure({
            store: this.req.store,
            state: this.req.state,
            configDir: this.req.configDir,
            ...queue,
            kind: batch.kind,
            error: message,
            attempts: attempt,
            now: this.now(),
          });
          if (warning) this.warnings.push(`${integration.name}/${batch.segment}: ${warning}`);
          await markAlerted(sql, batch, this.now().toISOString());
        }
        return;
      }
    }
  }

  private record(outcome: BatchOutcome): void {
    this.outcomes.push(outcome);
    this.req.onBatch?.(outcome);
  }

  private session(integration: ResolvedIntegration): Promise<Session> {
    let s = this.sessions.get(integration.name);
    if (!s) {
      s = openSession({
        resource: integration.connector,
        configDir: this.req.configDir,
        ...(this.req.signal ? { signal: this.req.signal } : {}),
        ...(this.req.env ? { env: this.req.env } : {}),
      });
      s.catch(() => undefined);
      this.sessions.set(integration.name, s);
    }
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await closeQuietly(await s.catch(() => undefined));
  }
}
