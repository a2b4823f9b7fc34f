import type { StoreSql } from '../store/sql.js';
import type { RuntimeStore } from '../store/types.js';
import type { AlertMessage, Channel, Delivery } from './types.js';

const COLUMNS =
  'id, alert, topic, kind, channel, target, status, attempts, last_error, created_at, updated_at, next_attempt_at, sent_at';

/**
 * Records a delivery about to be attempted (`pending`, no attempts yet), held for `holdMs` so that
 * no other process retries it while this one attempts it; returns its id.
 */
export async function recordDelivery(req: {
  sql: StoreSql;
  message: AlertMessage;
  channel: Channel;
  target: string;
  now: Date;
  holdMs: number;
}): Promise<number> {
  const at = req.now.toISOString();
  const hold = new Date(req.now.getTime() + req.holdMs).toISOString();
  const m = req.message;
  const rows = await req.sql.all<{ id: number }>(
    `INSERT INTO alert_deliveries (alert, topic, kind, channel, target, status, attempts, message, created_at, updated_at, next_attempt_at)
     VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?) RETURNING id`,
    [m.alert, m.topic, m.kind, req.channel, req.target, JSON.stringify(m), at, at, hold],
  );
  return Number(rows[0]?.id);
}

/** The outcome of the attempts made so far. */
export type DeliveryUpdate =
  | { readonly status: 'sent'; readonly note?: string }
  | { readonly status: 'failed'; readonly error: string }
  | { readonly status: 'pending'; readonly error: string; readonly nextAttemptAt: Date };

export async function updateDelivery(req: {
  store: RuntimeStore;
  id: number;
  attempts: number;
  update: DeliveryUpdate;
  now: Date;
}): Promise<void> {
  const u = req.update;
  const at = req.now.toISOString();
  await req.store.sql.run(
    `UPDATE alert_deliveries SET status = ?, attempts = ?, last_error = ?, updated_at = ?, next_attempt_at = ?, sent_at = ?
     WHERE id = ?`,
    [
      u.status,
      req.attempts,
      u.status === 'sent' ? (u.note ?? null) : u.error,
      at,
      u.status === 'pending' ? u.nextAttemptAt.toISOString() : null,
      u.status === 'sent' ? at : null,
      req.id,
    ],
  );
}

/** A pending delivery due for another attempt, with the message it carries. */
export interface DueDelivery extends Delivery {
  readonly message: AlertMessage;
}

/** Pending deliveries whose next attempt is due at `now`, oldest first. */
export async function dueDeliveries(req: {
  store: RuntimeStore;
  now: Date;
  limit: number;
}): Promise<DueDelivery[]> {
  const rows = await req.store.sql.all<Delivery & { message: string }>(
    `SELECT ${COLUMNS}, message FROM alert_deliveries
     WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?`,
    [req.now.toISOString(), req.limit],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id), message: JSON.parse(r.message) as AlertMessage }));
}

/**
 * Claims a due delivery for one attempt by pushing its next attempt out by `leaseMs`: of two
 * processes (agents sharing a store) only one sees its update succeed.
 */
export async function claimDelivery(req: {
  store: RuntimeStore;
  delivery: Delivery;
  now: Date;
  leaseMs: number;
}): Promise<boolean> {
  const { changes } = await req.store.sql.run(
    `UPDATE alert_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at = ?`,
    [new Date(req.now.getTime() + req.leaseMs).toISOString(), req.delivery.id, req.delivery.next_attempt_at],
  );
  return changes === 1;
}

export interface ListDeliveriesRequest {
  readonly store: RuntimeStore;
  readonly status?: Delivery['status'];
  readonly alert?: string;
  /** At most this many, newest first (default 100). */
  readonly limit?: number;
}

/** Recorded deliveries, newest first (`backflow alerts deliveries`). */
export async function listDeliveries(req: ListDeliveriesRequest): Promise<Delivery[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (req.status) {
    where.push('status = ?');
    params.push(req.status);
  }
  if (req.alert) {
    where.push('alert = ?');
    params.push(req.alert);
  }
  const rows = await req.store.sql.all<Delivery>(
    `SELECT ${COLUMNS} FROM alert_deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
    [...params, req.limit ?? 100],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/** Pending and failed deliveries per alert (for `backflow alerts list`). */
export async function deliveryHealth(
  store: RuntimeStore,
): Promise<Map<string, { pending: number; failed: number }>> {
  const rows = await store.sql.all<{ alert: string; status: string; n: number | string }>(
    `SELECT alert, status, count(*) AS n FROM alert_deliveries WHERE status IN ('pending', 'failed') GROUP BY alert, status`,
  );
  const out = new Map<string, { pending: number; failed: number }>();
  for (const r of rows) {
    const h = out.get(r.alert) ?? { pending: 0, failed: 0 };
    if (r.status === 'pending') h.pending = Number(r.n);
    else h.failed = Number(r.n);
    out.set(r.alert, h);
  }
  return out;
}
