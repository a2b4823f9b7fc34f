/**
 * Batches in the runtime store: formed from the head of a queue, run, then delivered or failed
 * (kept, with the next attempt time). A delivered batch is marked in the transaction that forms
 * the next one, and its profiles leave the queue (and its query-log row is written) in bulk, a
 * few dozen batches at a time (`purgeDelivered`): one batch then costs the store one or two
 * pages of writes instead of a dozen. Readers treat a marked batch as gone.
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
  /** Profiles in row `seq`, when known: a row taken up to its end is not read again. */
  readonly count?: number;
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
    `SELECT * FROM segment_batches WHERE delivered IS NULL ${queue ? 'AND integration = ? AND segment = ?' : ''}
      ORDER BY id`,
    queue ? [queue.integration, queue.segment] : [],
  );
  return rows.map(toBatch);
}

/** Where a queue's next batch starts, given its undelivered batches. */
export function positionAfter(batches: readonly BatchRow[]): Position {
  const last = batches.at(-1)?.slices.at(-1);
  return last ? { seq: last.seq, to: last.to, count: last.count } : { seq: 0, to: 0 };
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
 * A delivered (or deliberately skipped) batch: marked, with what its query-log row will hold. It no
 * longer counts as queued or in flight, and `segments stats` counts its query (`queryLog`);
 * `purgeDelivered` removes its profiles from the queue and writes the log row.
 */
export async function markDelivered(sql: StoreSql, batch: BatchRow, log: QueryLogRow): Promise<void> {
  const mark = {
    at: log.at,
    ok: log.ok ? 1 : 0,
    profiles: log.profiles,
    duration_ms: Math.round(log.durationMs),
    attempt: log.attempt,
    message: log.message ?? null,
  };
  await sql.run('UPDATE segment_batches SET delivered = ? WHERE id = ?', [JSON.stringify(mark), batch.id]);
}

/** A field of a delivered batch's mark, in SQL (as INTEGER with `int`). */
function markField(sql: StoreSql, field: string, int = false): string {
  const text = sql.dialect === 'sqlite' ? `(delivered ->> '${field}')` : `(delivered::json ->> '${field}')`;
  return int ? `CAST(${text} AS INTEGER)` : text;
}

/** Query-log columns (and `id`) of delivered batches not moved out yet: a SELECT ending in its WHERE. */
function markedQueries(sql: StoreSql): string {
  return `SELECT id, integration, segment, kind, ${markField(sql, 'at')} AS at, ${markField(sql, 'ok', true)} AS ok,
            ${markField(sql, 'profiles', true)} AS profiles, ${markField(sql, 'duration_ms', true)} AS duration_ms,
            ${markField(sql, 'attempt', true)} AS attempt, ${markField(sql, 'message')} AS message
       FROM segment_batches WHERE delivered IS NOT NULL`;
}

/**
 * Every query run, as a FROM item (`segments stats` reads it): the query log, and the queries of
 * delivered batches whose rows are not written yet. Columns: those of segment_queries but
 * `duration_ms`, and `pending` (1 for the latter; with `id`, it orders rows of one time).
 */
export function queryLog(sql: StoreSql): string {
  return `(SELECT id, 0 AS pending, integration, segment, kind, at, ok, profiles, attempt, message FROM segment_queries
     UNION ALL
     SELECT id, 1 AS pending, integration, segment, kind, at, ok, profiles, attempt, message
       FROM (${markedQueries(sql)}) AS marked
  ) AS query_log`;
}

/**
 * Moves a queue's delivered batches out, in one transaction: rows they finished leave the queue,
 * a row they took part of remembers how far, their queries are logged, the batches are removed.
 * Returns how many there were. Run it while holding the queue's lease.
 */
export async function purgeDelivered(
  sql: StoreSql,
  queue: { integration: string; segment: string },
): Promise<number> {
  return sql.transaction(async (tx) => {
    const rows = await tx.all<{ id: unknown; slices: string }>(
      `SELECT id, slices FROM segment_batches
        WHERE integration = ? AND segment = ? AND delivered IS NOT NULL ORDER BY id`,
      [queue.integration, queue.segment],
    );
    if (rows.length === 0) return 0;
    const done: number[] = [];
    const partial = new Map<number, number>();
    for (const r of rows)
      for (const s of JSON.parse(r.slices) as Slice[]) {
        if (s.to >= s.count) done.push(s.seq);
        else partial.set(s.seq, Math.max(partial.get(s.seq) ?? 0, s.to));
      }
    for (const seq of done) partial.delete(seq);
    if (done.length)
      await tx.run(`DELETE FROM segment_events WHERE seq IN (${jsonInts(tx)})`, [JSON.stringify(done)]);
    for (const [seq, to] of partial)
      await tx.run('UPDATE segment_events SET taken = ? WHERE seq = ? AND taken < ?', [to, seq, to]);
    const ids = JSON.stringify(rows.map((r) => Number(r.id)));
    await tx.run(
      `INSERT INTO segment_queries (integration, segment, kind, at, ok, profiles, duration_ms, attempt, message)
       SELECT integration, segment, kind, at, ok, profiles, duration_ms, attempt, message
         FROM (${markedQueries(tx)} AND id IN (${jsonInts(tx)})) AS marked ORDER BY id`,
      [ids],
    );
    await tx.run(`DELETE FROM segment_batches WHERE id IN (${jsonInts(tx)})`, [ids]);
    return rows.length;
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
