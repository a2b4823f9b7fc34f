/**
 * The queue's rules, as pure functions (unit-tested with literals): which events form the next
 * batch, when a queue is due, and how long a failed batch waits.
 *
 * Order per profile holds because events run strictly in sequence order and a batch is a run of
 * consecutive events of one kind: `add A, remove A` is two batches, the add first, so a profile
 * added then removed never ends up added. (A queue row holds a run of same-kind events of one
 * enqueue, so a batch is made of slices of consecutive rows.)
 */
import { type EventKind, isProfileKind } from './types.js';

/** After this many failed attempts of one batch, the alerts feature is told (once); retries go on. */
export const MAX_ATTEMPTS = 5;
/** Wait after the first failure; doubles after each further failure. */
export const BASE_BACKOFF_MS = 5_000;
/** The longest wait between attempts (and the wait once MAX_ATTEMPTS is reached). */
export const MAX_BACKOFF_MS = 10 * 60_000;

/** A queue row as batching sees it: `count` profiles (0 for a clear or segment event), of which those before `start` are taken. */
export interface QueueRow {
  readonly seq: number;
  readonly kind: EventKind;
  readonly count: number;
  readonly start: number;
}

/** Part of a row in a batch: its profiles `from` (inclusive) `to` (exclusive), of `count`. */
export interface Slice {
  readonly seq: number;
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

/**
 * The next batch from the head of a queue (rows in sequence order): the leading run of profiles
 * of the head's kind, at most `size` of them, across rows of that kind; a clear or segment event
 * is a batch of its own.
 */
export function headSlices(rows: readonly QueueRow[], size: number): Slice[] {
  const first = rows[0];
  if (!first) return [];
  if (!isProfileKind(first.kind)) return [{ seq: first.seq, from: 0, to: first.count, count: first.count }];
  const out: Slice[] = [];
  let left = size;
  for (const r of rows) {
    if (r.kind !== first.kind || left <= 0) break;
    const take = Math.min(left, r.count - r.start);
    if (take <= 0) continue;
    out.push({ seq: r.seq, from: r.start, to: r.start + take, count: r.count });
    left -= take;
  }
  return out;
}

export interface DueRequest {
  /** Kind of the first waiting event (not yet in a batch). */
  readonly headKind: EventKind;
  /** Add/remove events waiting (not yet in a batch). */
  readonly waitingProfiles: number;
  /** When the oldest waiting event was queued. */
  readonly oldestAt: Date;
  readonly batchSize: number;
  readonly timeoutMs: number;
  readonly now: Date;
}

/**
 * A queue is due when `batch.size` profiles are waiting, when `batch.timeout` has passed since
 * the oldest waiting event, or when a clear or segment event is next (those are not batched, so
 * waiting would only delay them).
 */
export function isDue(req: DueRequest): boolean {
  if (!isProfileKind(req.headKind)) return true;
  if (req.waitingProfiles >= req.batchSize) return true;
  return req.now.getTime() - req.oldestAt.getTime() >= req.timeoutMs;
}

/** When a queue that is not due becomes due by its timeout. */
export function dueAt(oldestAt: Date, timeoutMs: number): Date {
  return new Date(oldestAt.getTime() + timeoutMs);
}

/** The wait after a batch's `attempts`-th failure: 5 s, 10 s, 20 s, 40 s, then 10 min. */
export function backoffMs(attempts: number): number {
  if (attempts >= MAX_ATTEMPTS) return MAX_BACKOFF_MS;
  return Math.min(BASE_BACKOFF_MS * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

/** When a batch that failed for the `attempts`-th time is tried again. */
export function nextAttemptAt(now: Date, attempts: number): Date {
  return new Date(now.getTime() + backoffMs(attempts));
}
