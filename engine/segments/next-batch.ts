/**
 * The next batch of a queue: an undelivered one from before (interrupted, or failed and due for
 * its retry), or a new one formed from the head when the queue is due, contents read and query
 * rendered.
 */
import type { StoreSql } from '../store/sql.js';
import { type BatchRow, claimBatch, type Position } from './batches.js';
import { dueAt, headSlices, isDue } from './batching.js';
import type { Queue } from './lease.js';
import { batchRows, waitingRows } from './queue.js';
import { type BatchContents, type BatchQuery, type BatchRenderer, contents } from './render-batch.js';
import type { ResolvedIntegration } from './resolve.js';
import type { QueueWaiting } from './types.js';

/** A batch ready to run. */
export interface Prepared extends BatchContents {
  readonly batch: BatchRow;
  /** The rendered query, or why there is none: rendered while the previous batch's query runs. */
  readonly query: BatchQuery;
  /** It had been started by a process that died: it runs again. */
  readonly resumed: boolean;
  /** Formed by this flush (given back to the queue if it does not run). */
  readonly fresh: boolean;
}

/** Why no batch runs now. */
export interface Waiting {
  readonly reason: QueueWaiting['reason'];
  readonly until?: string;
}

/** Where a drain stands in its queue: past its batches, and how many profiles still wait. */
export interface QueueCursor {
  after: Position;
  waitingProfiles: number;
}

export interface NextBatchRequest {
  readonly sql: StoreSql;
  readonly queue: Queue;
  readonly integration: ResolvedIntegration;
  /** Undelivered batches of the queue not run yet by this drain, oldest first (consumed). */
  readonly existing: BatchRow[];
  readonly cursor: QueueCursor;
  /** Run what is not due yet (and retry a backing-off batch now). */
  readonly all: boolean;
  readonly now: Date;
  readonly renderer: BatchRenderer;
}

/** A batch whose contents are read, not rendered yet. */
export interface Formed extends BatchContents {
  readonly batch: BatchRow;
  readonly resumed: boolean;
  readonly fresh: boolean;
}

/** Renders a formed batch's query (outside any store transaction: it is CPU work only). */
export function renderBatch(
  req: Pick<NextBatchRequest, 'integration' | 'renderer'>,
  formed: Formed,
): Prepared {
  return { ...formed, query: req.renderer.query(req.integration, formed.batch, formed) };
}

/**
 * The next batch to run, read (and, when new, claimed) with its contents; why none runs now; or
 * undefined when the queue is empty. Call it inside a transaction to claim the batch together with
 * other store work, and render it (`renderBatch`) once the transaction is over.
 */
export async function formBatch(
  req: Omit<NextBatchRequest, 'renderer'>,
): Promise<Formed | Waiting | undefined> {
  const { sql, integration, cursor } = req;
  const head = req.existing[0];
  if (head) {
    const interrupted = head.startedAt !== null;
    if (!interrupted && !req.all && head.nextAttemptAt && head.nextAttemptAt > req.now.toISOString())
      return { reason: 'backoff', until: head.nextAttemptAt };
    req.existing.shift();
    const c = contents(await batchRows(sql, head), head.slices);
    return { batch: head, ...c, resumed: interrupted, fresh: false };
  }
  const rows = await waitingRows(sql, req.queue, cursor.after, integration.batchSize);
  const first = rows[0]?.row;
  if (!first) return undefined;
  const oldestAt = new Date(first.enqueuedAt);
  const due =
    req.all ||
    isDue({
      headKind: first.kind,
      waitingProfiles: cursor.waitingProfiles,
      oldestAt,
      batchSize: integration.batchSize,
      timeoutMs: integration.timeoutMs,
      now: req.now,
    });
  if (!due) return { reason: 'not_due', until: dueAt(oldestAt, integration.timeoutMs).toISOString() };
  const slices = headSlices(
    rows.map(({ row, start }) => ({ seq: row.seq, kind: row.kind, count: row.count, start })),
    integration.batchSize,
  );
  const batch = await claimBatch(sql, {
    integration: req.queue.integration,
    segment: req.queue.segment,
    kind: first.kind,
    slices,
    now: req.now.toISOString(),
  });
  const last = slices.at(-1)!;
  cursor.after = { seq: last.seq, to: last.to, count: last.count };
  const c = contents(
    rows.map((r) => r.row),
    slices,
  );
  cursor.waitingProfiles -= c.profiles.length;
  return { batch, ...c, resumed: false, fresh: true };
}
