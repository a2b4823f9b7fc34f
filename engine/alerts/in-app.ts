import type { StoreSql } from '../store/sql.js';
import type { RuntimeStore } from '../store/types.js';
import { renderText } from './message.js';
import type { AlertMessage, Fact, MessageError, MessageKind } from './types.js';

/** An in-app notification, as `backflow notifications --json` and `GET /api/notifications` show it. */
export interface Notification {
  readonly id: number;
  readonly created_at: string;
  readonly read_at: string | null;
  readonly alert: string;
  readonly kind: MessageKind;
  readonly topic: string;
  readonly status: string;
  readonly title: string;
  readonly summary: string;
  readonly facts: readonly Fact[];
  readonly errors: readonly MessageError[];
  readonly run_id: string | null;
  readonly next_step: string;
  /** The whole notification as text (what the email's text part says). */
  readonly body: string;
}

interface Row {
  id: number;
  created_at: string;
  read_at: string | null;
  alert: string;
  kind: string;
  topic: string;
  status: string;
  title: string;
  body: string;
  run_id: string | null;
  message: string;
}

/** Stores a notification; returns its id. */
export async function storeNotification(req: { sql: StoreSql; message: AlertMessage }): Promise<number> {
  const m = req.message;
  const rows = await req.sql.all<{ id: number }>(
    `INSERT INTO notifications (created_at, alert, kind, topic, status, title, body, run_id, message)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    [m.created_at, m.alert, m.kind, m.topic, m.status, m.title, renderText(m), m.run_id, JSON.stringify(m)],
  );
  return Number(rows[0]?.id);
}

export interface ListNotificationsRequest {
  readonly store: RuntimeStore;
  /** Only those not marked read. */
  readonly unread?: boolean;
  /** At most this many, newest first (default 100). */
  readonly limit?: number;
}

/** In-app notifications, newest first (for the CLI and the agent's `GET /api/notifications`). */
export async function listNotifications(req: ListNotificationsRequest): Promise<Notification[]> {
  const rows = await req.store.sql.all<Row>(
    `SELECT id, created_at, read_at, alert, kind, topic, status, title, body, run_id, message FROM notifications
     ${req.unread ? 'WHERE read_at IS NULL' : ''} ORDER BY id DESC LIMIT ?`,
    [req.limit ?? 100],
  );
  return rows.map(toNotification);
}

/** How many notifications are unread. */
export async function countUnread(store: RuntimeStore): Promise<number> {
  const rows = await store.sql.all<{ n: number | string }>(
    'SELECT count(*) AS n FROM notifications WHERE read_at IS NULL',
  );
  return Number(rows[0]?.n ?? 0);
}

export interface MarkReadRequest {
  readonly store: RuntimeStore;
  /** These notifications, or every unread one when omitted. */
  readonly ids?: readonly number[];
  readonly now?: Date;
}

/** Marks notifications read; returns the ids that exist (already read ones included) — a missing id is simply absent. */
export async function markNotificationsRead(req: MarkReadRequest): Promise<number[]> {
  const at = (req.now ?? new Date()).toISOString();
  return req.store.sql.transaction(async (tx) => {
    if (req.ids === undefined) {
      const rows = await tx.all<{ id: number }>(
        'SELECT id FROM notifications WHERE read_at IS NULL ORDER BY id',
      );
      await tx.run('UPDATE notifications SET read_at = ? WHERE read_at IS NULL', [at]);
      return rows.map((r) => Number(r.id));
    }
    const found: number[] = [];
    for (const id of req.ids) {
      const exists = await tx.all<{ id: number }>('SELECT id FROM notifications WHERE id = ?', [id]);
      if (!exists.length) continue;
      await tx.run('UPDATE notifications SET read_at = ? WHERE id = ? AND read_at IS NULL', [at, id]);
      found.push(id);
    }
    return found;
  });
}

function toNotification(r: Row): Notification {
  const m = JSON.parse(r.message) as AlertMessage;
  return {
    id: Number(r.id),
    created_at: r.created_at,
    read_at: r.read_at,
    alert: r.alert,
    kind: r.kind as MessageKind,
    topic: r.topic,
    status: r.status,
    title: r.title,
    summary: m.summary,
    facts: m.facts,
    errors: m.errors,
    run_id: r.run_id,
    next_step: m.next_step,
    body: r.body,
  };
}
