/** `segments stats` (queries run in a window) and `segments queue` (what waits), from the runtime store. */
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { listBatches, queryLog } from './batches.js';
import { queueSummaries } from './queue.js';
import { findIntegration } from './resolve.js';
import type { EventKind, QueryError, QueueDepth, SegmentStats } from './types.js';

export interface SegmentStatsRequest {
  readonly store: RuntimeStore;
  readonly integration: string;
  /** Start of the window (inclusive). */
  readonly since: Date;
  /** End of the window (default: now). */
  readonly until?: Date;
  /** At most this many errors, the latest ones (default 1000). */
  readonly errorLimit?: number;
}

/** Successful and failed queries of an integration in a window, with every error (time, query kind, message). */
export async function segmentStats(req: SegmentStatsRequest): Promise<SegmentStats> {
  const since = req.since.toISOString();
  const until = (req.until ?? new Date()).toISOString();
  const sql = req.store.sql;
  const counts = await sql.all<{ kind: EventKind; ok: unknown; n: unknown; profiles: unknown }>(
    `SELECT kind, ok, count(*) AS n, sum(profiles) AS profiles FROM ${queryLog(sql)}
      WHERE integration = ? AND at >= ? AND at <= ? GROUP BY kind, ok`,
    [req.integration, since, until],
  );
  const byKind: Partial<Record<EventKind, { ok: number; failed: number }>> = {};
  let successful = 0;
  let failed = 0;
  let profiles = 0;
  for (const c of counts) {
    const n = Number(c.n);
    const entry = byKind[c.kind] ?? { ok: 0, failed: 0 };
    byKind[c.kind] = entry;
    if (Number(c.ok) === 1) {
      entry.ok += n;
      successful += n;
      profiles += Number(c.profiles ?? 0);
    } else {
      entry.failed += n;
      failed += n;
    }
  }
  const rows = await sql.all<Record<string, unknown>>(
    `SELECT at, segment, kind, message, attempt, profiles FROM ${queryLog(sql)}
      WHERE integration = ? AND at >= ? AND at <= ? AND ok = 0 ORDER BY at DESC, pending DESC, id DESC LIMIT ?`,
    [req.integration, since, until, req.errorLimit ?? 1000],
  );
  const errors: QueryError[] = rows.reverse().map((r) => ({
    time: String(r.at),
    segment: String(r.segment),
    kind: r.kind as EventKind,
    message: String(r.message ?? ''),
    attempt: Number(r.attempt),
    profiles: Number(r.profiles),
  }));
  return {
    integration: req.integration,
    since,
    until,
    successful_queries: successful,
    failed_queries: failed,
    profiles,
    by_kind: byKind,
    errors,
  };
}

export interface QueueDepthRequest {
  readonly store: RuntimeStore;
  /** When given, each queue says whether its integration is paused or gone. */
  readonly state?: StateDocument | null;
}

/** Every non-empty queue: events and profiles waiting, in flight, the oldest, and the head batch's retry state. */
export async function queueDepth(req: QueueDepthRequest): Promise<QueueDepth[]> {
  const [summaries, batches] = await Promise.all([queueSummaries(req.store.sql), listBatches(req.store.sql)]);
  // A queue holding only delivered batches that were not moved out yet is empty.
  return summaries
    .filter((q) => q.events > 0)
    .map((q) => {
      const head = batches.find((b) => b.integration === q.integration && b.segment === q.segment);
      const integration = req.state !== undefined ? findIntegration(req.state, q.integration) : undefined;
      return {
        integration: q.integration,
        segment: q.segment,
        events: q.events,
        profiles: q.profiles,
        in_flight: q.batched,
        oldest_at: q.oldestAt,
        attempts: head?.attempts ?? 0,
        next_attempt_at: head?.nextAttemptAt ?? null,
        last_error: head?.lastError ?? null,
        ...(req.state !== undefined
          ? { paused: integration ? !integration.enabled : false, missing: integration === undefined }
          : {}),
      };
    });
}
