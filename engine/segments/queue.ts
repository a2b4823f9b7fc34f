/**
 * The durable queue's rows in the runtime store (tables: engine/store/features/segments.ts).
 * Every function takes the store's SQL handle, so callers compose them inside one transaction.
 *
 * A row holds one clear or segment event, or up to ROW_PROFILES add/remove events of one enqueue.
 * A batch is a list of slices of consecutive rows; what lies past the last slice of a queue's
 * batches waits for the next batch. A row leaves the queue when its last profile is delivered.
 */
import type { StoreSql } from '../store/sql.js';
import type { Slice } from './batching.js';
import { jsonInts } from './bulk.js';
import type { IntegrationSnapshot } from './resolve.js';
import type { EventKind, Profile } from './types.js';

/** Profiles per queue row (a batch of up to `batch.size` reads and parses a few rows). */
export const ROW_PROFILES = 500;

/** What the events of one enqueue have in common. */
export interface EventGroup {
  readonly integration: string;
  readonly segment: string;
  readonly kind: EventKind;
  /** The segment's id and name when the event happened (what `{segment_id}` and `{segment_name}` render). */
  readonly segmentId: number;
  readonly segmentName: string;
  /** JSON of an IntegrationSnapshot, for an integration the state no longer holds. */
  readonly snapshot?: string;
  readonly enqueuedAt: string;
}

/** A stored queue row. */
export interface EventRow {
  readonly seq: number;
  readonly kind: EventKind;
  /** The row's profiles as JSON text (null for clear and segment events); parse with rowProfiles. */
  readonly profilesJson: string | null;
  readonly count: number;
  /** Profiles at the front already delivered. */
  readonly taken: number;
  readonly segmentId: number;
  readonly segmentName: string;
  readonly snapshot: IntegrationSnapshot | null;
  readonly enqueuedAt: string;
}

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

/** Per queue: what it holds, and what waits outside batches. */
export interface QueueSummary {
  readonly integration: string;
  readonly segment: string;
  /** Profiles, plus one per clear or segment event. */
  readonly events: number;
  readonly profiles: number;
  readonly batched: number;
  readonly waitingProfiles: number;
  readonly oldestAt: string | null;
}

const COLUMNS =
  'integration, segment, kind, profiles, count, segment_id, segment_name, snapshot, enqueued_at';
const ROWS_PER_INSERT = 50;

/** Stores add/remove events for `profiles` (JSON text each), in the order given, ROW_PROFILES per row. */
export async function insertProfileEvents(
  sql: StoreSql,
  group: EventGroup,
  profiles: readonly { readonly json: string }[],
): Promise<void> {
  const rows: unknown[][] = [];
  for (let i = 0; i < profiles.length; i += ROW_PROFILES) {
    const chunk = profiles.slice(i, i + ROW_PROFILES);
    rows.push([
      group.integration,
      group.segment,
      group.kind,
      `[${chunk.map((p) => p.json).join(',')}]`,
      chunk.length,
      group.segmentId,
      group.segmentName,
      group.snapshot ?? null,
      group.enqueuedAt,
    ]);
  }
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    await sql.run(
      `INSERT INTO segment_events (${COLUMNS}) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      chunk.flat(),
    );
  }
}

/** Stores one event without profiles (clear, upsert_segment, delete_segment). */
export async function insertEvent(sql: StoreSql, event: EventGroup): Promise<void> {
  await sql.run(`INSERT INTO segment_events (${COLUMNS}) VALUES (?, ?, ?, NULL, 0, ?, ?, ?, ?)`, [
    event.integration,
    event.segment,
    event.kind,
    event.segmentId,
    event.segmentName,
    event.snapshot ?? null,
    event.enqueuedAt,
  ]);
}

/** Every queue holding events (optionally of one integration), in (integration, segment) order. */
export async function queueSummaries(sql: StoreSql, integration?: string): Promise<QueueSummary[]> {
  const where = integration === undefined ? '' : 'WHERE integration = ?';
  const params = integration === undefined ? [] : [integration];
  const rows = await sql.all<Record<string, unknown>>(
    `SELECT integration, segment,
            sum(CASE WHEN kind IN ('add', 'remove') THEN count - taken ELSE 1 END) AS events,
            sum(CASE WHEN kind IN ('add', 'remove') THEN count - taken ELSE 0 END) AS profiles,
            min(enqueued_at) AS oldest_at
       FROM segment_events ${where} GROUP BY integration, segment ORDER BY integration, segment`,
    params,
  );
  const batches = await listBatches(sql);
  return rows.map((r) => {
    const q = { integration: String(r.integration), segment: String(r.segment) };
    const mine = batches.filter((b) => b.integration === q.integration && b.segment === q.segment);
    const batched = mine.reduce((n, b) => n + b.events, 0);
    const batchedProfiles = mine
      .filter((b) => b.kind === 'add' || b.kind === 'remove')
      .reduce((n, b) => n + b.events, 0);
    return {
      ...q,
      events: Number(r.events),
      profiles: Number(r.profiles),
      batched,
      waitingProfiles: Number(r.profiles) - batchedProfiles,
      oldestAt: (r.oldest_at as string | null) ?? null,
    };
  });
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

/** A row's profiles (parsed only for rows a batch uses). */
export function rowProfiles(row: EventRow): Profile[] {
  return row.profilesJson === null ? [] : (JSON.parse(row.profilesJson) as Profile[]);
}

function toEvent(r: Record<string, unknown>): EventRow {
  return {
    seq: Number(r.seq),
    kind: r.kind as EventKind,
    profilesJson: typeof r.profiles === 'string' ? r.profiles : null,
    count: Number(r.count),
    taken: Number(r.taken),
    segmentId: Number(r.segment_id),
    segmentName: String(r.segment_name),
    snapshot: typeof r.snapshot === 'string' ? (JSON.parse(r.snapshot) as IntegrationSnapshot) : null,
    enqueuedAt: String(r.enqueued_at),
  };
}

const SELECT_EVENT =
  'SELECT seq, kind, profiles, count, taken, segment_id, segment_name, snapshot, enqueued_at FROM segment_events';

/**
 * Rows of a queue from position `after` on, in sequence order: enough for a batch of `size`
 * profiles of the head's kind (fetched a few rows at a time), with where each starts.
 */
export async function waitingRows(
  sql: StoreSql,
  queue: { integration: string; segment: string },
  after: Position,
  size: number,
): Promise<{ row: EventRow; start: number }[]> {
  const out: { row: EventRow; start: number }[] = [];
  let from = after.seq;
  let inclusive = true;
  let have = 0;
  // Enough rows for a full batch when rows are full; more each round when they are small.
  let page = Math.ceil(size / ROW_PROFILES) + 1;
  for (;;) {
    const rows = (
      await sql.all<Record<string, unknown>>(
        `${SELECT_EVENT} WHERE integration = ? AND segment = ? AND seq ${inclusive ? '>=' : '>'} ? ORDER BY seq LIMIT ?`,
        [queue.integration, queue.segment, from, page],
      )
    ).map(toEvent);
    for (const row of rows) {
      const start = row.seq === after.seq ? Math.max(after.to, row.taken) : row.taken;
      if (row.kind === 'add' || row.kind === 'remove') {
        if (start >= row.count) continue;
      } else if (row.seq === after.seq) continue; // a clear or segment event already in a batch
      const head = out[0]?.row.kind ?? row.kind;
      if (row.kind !== head) return out;
      out.push({ row, start });
      if (row.kind !== 'add' && row.kind !== 'remove') return out;
      have += row.count - start;
      if (have >= size) return out;
    }
    if (rows.length < page) return out;
    from = rows.at(-1)!.seq;
    inclusive = false;
    page = Math.min(page * 2, 256);
  }
}

/** The rows a batch's slices come from, in sequence order. */
export async function batchRows(sql: StoreSql, batch: BatchRow): Promise<EventRow[]> {
  const rows = await sql.all<Record<string, unknown>>(
    `${SELECT_EVENT} WHERE seq IN (${jsonInts(sql)}) ORDER BY seq`,
    [JSON.stringify(batch.slices.map((s) => s.seq))],
  );
  return rows.map(toEvent);
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
