/**
 * The durable queue's rows in the runtime store (tables: engine/store/features/segments.ts).
 * Every function takes the store's SQL handle, so callers compose them inside one transaction.
 *
 * A row holds one clear or segment event, or up to ROW_PROFILES add/remove events of one enqueue.
 * A batch is a list of slices of consecutive rows; what lies past the last slice of a queue's
 * batches waits for the next batch. A row leaves the queue when its last profile is delivered.
 */
import type { StoreSql } from '../store/sql.js';
import type { BatchRow, Position } from './batches.js';
import { listBatches } from './batches.js';
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

/**
 * Every queue holding events (optionally of one integration), in (integration, segment) order.
 * Events of batches marked delivered and not moved out yet do not count (a queue holding only
 * those has no events: a flush visits it to move them out).
 */
export async function queueSummaries(sql: StoreSql, integration?: string): Promise<QueueSummary[]> {
  const where = integration === undefined ? '' : 'WHERE integration = ?';
  const params = integration === undefined ? [] : [integration, integration];
  // One statement, so the queue and its delivered batches are read at one point in time. The
  // delivered batches of a queue come before its other batches, so what is left starts after
  // the last one: the oldest event is looked for from there.
  const rows = await sql.all<Record<string, unknown>>(
    `WITH q AS (
       SELECT integration, segment,
              sum(CASE WHEN kind IN ('add', 'remove') THEN count - taken ELSE 1 END) AS events,
              sum(CASE WHEN kind IN ('add', 'remove') THEN count - taken ELSE 0 END) AS profiles
         FROM segment_events ${where} GROUP BY integration, segment),
     d AS (
       SELECT integration, segment, sum(events) AS events,
              sum(CASE WHEN kind IN ('add', 'remove') THEN events ELSE 0 END) AS profiles, max(id) AS last
         FROM segment_batches ${where ? `${where} AND` : 'WHERE'} delivered IS NOT NULL
        GROUP BY integration, segment)
     SELECT q.integration, q.segment, q.events - coalesce(d.events, 0) AS events,
            q.profiles - coalesce(d.profiles, 0) AS profiles,
            (SELECT min(e.enqueued_at) FROM segment_events e
              WHERE e.integration = q.integration AND e.segment = q.segment
                AND (b.id IS NULL OR e.seq > b.last_seq OR (e.seq = b.last_seq AND e.count > b.last_to))
            ) AS oldest_at
       FROM q LEFT JOIN d ON d.integration = q.integration AND d.segment = q.segment
              LEFT JOIN segment_batches b ON b.id = d.last
      ORDER BY q.integration, q.segment`,
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
  // The row at the position is read again only if it has profiles left.
  let inclusive = after.count === undefined || after.to < after.count;
  let have = 0;
  // Enough rows for a full batch when rows are full; more each round when they are small.
  let page = Math.ceil(size / ROW_PROFILES) + (inclusive ? 1 : 0);
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
