/**
 * Batches in the runtime store: formed from the head of a queue, run, then completed (their
 * profiles leave the queue, the query is logged) or failed (kept, with the next attempt time).
 */
import type { StoreSql } from '../store/sql.js';
import type { Slice } from './batching.js';
import { jsonInts } from './bulk.js';
import type { EventKind } from './types.js';

/** A batch that was formed and not yet delivered. */
export interface BatchRow {
  readonly id: number;
  readonly integration: string;
  readonly segment: string;
  readonly kind: EventKind;
  /** Profiles in it (1 for a clear or segment event). */
  readonly events: number;
  readonly slices: readonly Slice[];
  readonly createdAt: string;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
  /** Set while a process runs the batch; still set after a crash (the batch was interrupted). */
  readonly startedAt: string | null;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  readonly alertedAt: string | null;
}

/** Where the next batch of a queue starts: after this slice end (row `seq`, profile index `to`). */
export interface Position {
  readonly seq: number;
  readonly to: number;
}

function toBatch(r: Record<string, unknown>): BatchRow {
  return {
    id: Number(r.id),
    integration: String(r.integration),
    segment: String(r.segment),
    kind: r.kind as EventKind,
    events: Number(r.events),
    slices: JSON.parse(String(r.slices)) as Slice[],
    createdAt: String(r.created_at),
    attempts: Number(r.attempts),
    nextAttemptAt: (r.next_attempt_at as string | null) ?? null,
    startedAt: (r.started_at as string | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
    lastErrorAt: (r.last_error_at as string | null) ?? null,
    alertedAt: (r.alerted_at as string | null) ?? null,
  };
}

/** Undelivered batches, oldest first (optionally of one queue). */
export async function listBatches(
  sql: StoreSql,
  queue?: { integration: string; segment: string },
): Promise<BatchRow[]> {
  const rows = await sql.all<Record<string, unknown>>(
    `SELECT * FROM segment_batches ${queue ? 'WHERE integration = ? AND segment = ?' : ''} ORDER BY id`,
    queue ? [queue.integration, queue.segment] : [],
  );
  return rows.map(toBatch);
}

/** Where a queue's next batch starts, given its undelivered batches. */
export function positionAfter(batches: readonly BatchRow[]): Position {
  const last = batches.at(-1)?.slices.at(-1);
  return last ? { seq: last.seq, to: last.to } : { seq: 0, to: 0 };
}

/** Forms a batch of `slices` (the head run of a queue), marked started. */
export async function claimBatch(
  sql: StoreSql,
  req: { integration: string; segment: string; kind: EventKind; slices: readonly Slice[]; now: string },
): Promise<BatchRow> {
  const profiles = req.slices.reduce((n, s) => n + (s.to - s.from), 0);
  const last = req.slices.at(-1)!;
  const events = profiles || 1;
  const [row] = await sql.all<{ id: unknown }>(
    `INSERT INTO segment_batches (integration, segment, kind, events, last_seq, last_to, slices, created_at, attempts, started_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING id`,
    [
      req.integration,
      req.segment,
      req.kind,
      events,
      last.seq,
      last.to,
      JSON.stringify(req.slices),
      req.now,
      req.now,
    ],
  );
  return {
    id: Number(row!.id),
    integration: req.integration,
    segment: req.segment,
    kind: req.kind,
    events,
    slices: req.slices,
    createdAt: req.now,
    attempts: 0,
    nextAttemptAt: null,
    startedAt: req.now,
    lastError: null,
    lastErrorAt: null,
    alertedAt: null,
  };
}

/** Gives a batch's events back to the queue (a batch formed ahead that will not run now). */
export async function unclaimBatch(sql: StoreSql, batch: BatchRow): Promise<void> {
  await sql.run('DELETE FROM segment_batches WHERE id = ?', [batch.id]);
}

/** Marks a batch as running (again). */
export async function markStarted(sql: StoreSql, batch: BatchRow, now: string): Promise<void> {
  await sql.run('UPDATE segment_batches SET started_at = ? WHERE id = ?', [now, batch.id]);
}

/** One row of the query log (`segments stats`). */
export interface QueryLogRow {
  readonly integration: string;
  readonly segment: string;
  readonly kind: EventKind;
  readonly at: string;
  readonly ok: boolean;
  readonly profiles: number;
  readonly durationMs: number;
  readonly attempt: number;
  readonly message?: string;
}

export async function logQuery(sql: StoreSql, row: QueryLogRow): Promise<void> {
  await sql.run(
    `INSERT INTO segment_queries (integration, segment, kind, at, ok, profiles, duration_ms, attempt, message)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      row.integration,
      row.segment,
      row.kind,
      row.at,
      row.ok ? 1 : 0,
      row.profiles,
      Math.round(row.durationMs),
      row.attempt,
      row.message ?? null,
    ],
  );
}

/**
 * A delivered (or deliberately skipped) batch, in one transaction: rows it finished leave the
 * queue, a row it took part of remembers how far, the query is logged.
 */
export async function completeBatch(sql: StoreSql, batch: BatchRow, log: QueryLogRow): Promise<void> {
  const done = batch.slices.filter((s) => s.to >= s.count).map((s) => s.seq);
  const partial = batch.slices.filter((s) => s.to < s.count);
  await sql.transaction(async (tx) => {
    if (done.length)
      await tx.run(`DELETE FROM segment_events WHERE seq IN (${jsonInts(tx)})`, [JSON.stringify(done)]);
    for (const s of partial)
      await tx.run('UPDATE segment_events SET taken = ? WHERE seq = ? AND taken < ?', [s.to, s.seq, s.to]);
    await tx.run('DELETE FROM segment_batches WHERE id = ?', [batch.id]);
    await logQuery(tx, log);
  });
}

/** A failed attempt: the batch stays, with its next attempt time; the error is logged. */
export async function failBatch(
  sql: StoreSql,
  batch: BatchRow,
  req: { attempts: number; nextAttemptAt: string; log: QueryLogRow },
): Promise<void> {
  await sql.transaction(async (tx) => {
    await tx.run(
      `UPDATE segment_batches SET attempts = ?, next_attempt_at = ?, started_at = NULL,
              last_error = ?, last_error_at = ? WHERE id = ?`,
      [req.attempts, req.nextAttemptAt, req.log.message ?? null, req.log.at, batch.id],
    );
    await logQuery(tx, req.log);
  });
}

export async function markAlerted(sql: StoreSql, batch: BatchRow, now: string): Promise<void> {
  await sql.run('UPDATE segment_batches SET alerted_at = ? WHERE id = ?', [now, batch.id]);
}

/** Drops query-log rows older than `before` (the log is for recent statistics, not an archive). */
export async function pruneQueryLog(sql: StoreSql, before: string): Promise<void> {
  await sql.run('DELETE FROM segment_queries WHERE at < ?', [before]);
}
