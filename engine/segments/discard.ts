/**
 * `segments discard`: the way out of a batch whose query can never succeed (a value the target
 * refuses, a row it will always reject). A failed batch keeps its queue waiting behind it and is
 * retried for as long as it takes; discarding it lets the queue go on. Its events leave the queue
 * unsent and its query is logged as failed with the reason (`segments stats` shows it). Its profiles
 * are handed to the caller first, to be kept and queued again once the cause is fixed: nothing goes
 * without the user saying so.
 */
import { UserError } from '../errors.js';
import type { RuntimeStore } from '../store/types.js';
import { listBatches, markDelivered, purgeDelivered } from './batches.js';
import { acquireLease, newOwner, releaseLease } from './lease.js';
import { batchRows } from './queue.js';
import { contents } from './render-batch.js';
import type { EventKind, Profile } from './types.js';

export interface DiscardRequest {
  readonly store: RuntimeStore;
  readonly integration: string;
  readonly segment: string;
  /**
   * Called with the batch's profiles before anything changes in the store (to save them); when it
   * throws, the batch stays.
   */
  readonly keep: (profiles: readonly Profile[], kind: EventKind) => Promise<void>;
  readonly now?: Date;
}

export interface DiscardResult {
  readonly integration: string;
  readonly segment: string;
  readonly kind: EventKind;
  readonly profiles: number;
  readonly attempts: number;
  readonly last_error: string;
}

/** Discards the failed batch at the head of the queue (integration, segment). */
export async function discardFailedBatch(req: DiscardRequest): Promise<DiscardResult> {
  const sql = req.store.sql;
  const queue = { integration: req.integration, segment: req.segment };
  const where = `${req.integration}/${req.segment}`;
  const owner = newOwner();
  if (!(await acquireLease(sql, queue, owner)))
    throw new UserError(`the queue ${where} is being flushed by another process (the agent?)`, {
      hint: 'try again in a moment: a failed batch waits for its next attempt between flushes',
    });
  try {
    await purgeDelivered(sql, queue);
    const [head] = await listBatches(sql, queue);
    if (!head || head.attempts === 0 || head.lastError === null)
      throw new UserError(`the queue ${where} has no failed batch at its head: nothing to discard`, {
        hint: '`backflow segments queue` shows each queue and the last error of its head batch',
      });
    const { profiles } = contents(await batchRows(sql, head), head.slices);
    await req.keep(profiles, head.kind);
    const message = `discarded after ${head.attempts} failed attempt${head.attempts === 1 ? '' : 's'} (last error: ${head.lastError})`;
    await sql.transaction(async (tx) => {
      await markDelivered(tx, head, {
        ...queue,
        kind: head.kind,
        at: (req.now ?? new Date()).toISOString(),
        ok: false,
        profiles: profiles.length,
        durationMs: 0,
        attempt: head.attempts,
        message,
      });
      await purgeDelivered(tx, queue);
    });
    return {
      ...queue,
      kind: head.kind,
      profiles: profiles.length,
      attempts: head.attempts,
      last_error: head.lastError,
    };
  } finally {
    await releaseLease(sql, queue, owner).catch(() => undefined);
  }
}
