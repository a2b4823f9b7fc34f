import { setTimeout as sleep } from 'node:timers/promises';
import type { Alert } from '../config/types.gen.js';
import { errorMessage } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { StoreSql } from '../store/sql.js';
import type { RuntimeStore } from '../store/types.js';
import { findAlert, resolveChannel } from './config.js';
import {
  claimDelivery,
  type DeliveryUpdate,
  dueDeliveries,
  recordDelivery,
  updateDelivery,
} from './deliveries.js';
import { sendEmail } from './email.js';
import { storeNotification } from './in-app.js';
import { sendSlack } from './slack.js';
import type { AlertMessage, AppliedAlert, AttemptResult, Channel } from './types.js';

/**
 * How hard delivery tries. Inline (while the sync's caller waits): a few quick attempts, stopping
 * early when they are slow (a server that times out). Then the delivery is `pending` and later
 * runs / agent ticks retry it, one attempt each, backing off up to `maxDelayMs`, until `giveUpMs`
 * after it was created.
 */
export const RETRY_POLICY = {
  inlineAttempts: 3,
  inlineDelaysMs: [250, 1000],
  inlineBudgetMs: 10_000,
  firstDelayMs: 60_000,
  maxDelayMs: 3_600_000,
  giveUpMs: 86_400_000,
  /** While one process attempts a delivery, others leave it alone for this long. */
  leaseMs: 600_000,
} as const;

/** The delay before the next background attempt, after `attempts` attempts so far. */
export function retryDelayMs(attempts: number): number {
  const rounds = Math.max(0, attempts - RETRY_POLICY.inlineAttempts);
  return Math.min(RETRY_POLICY.firstDelayMs * 2 ** rounds, RETRY_POLICY.maxDelayMs);
}

interface ChannelTarget {
  readonly channel: Exclude<Channel, 'in_app'>;
  readonly target: string;
}

/** The email and Slack channels an alert has, with who they reach. */
export function remoteChannels(body: Alert): ChannelTarget[] {
  return [
    ...(body.email ? [{ channel: 'email' as const, target: body.email.to.join(', ') }] : []),
    ...(body.slack ? [{ channel: 'slack' as const, target: body.slack.channel ?? 'webhook' }] : []),
  ];
}

interface AttemptRequest {
  readonly alert: AppliedAlert | undefined;
  readonly channel: ChannelTarget['channel'];
  readonly message: AlertMessage;
  readonly configDir: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** One attempt on one channel; secrets are resolved now, from the alert as currently applied. */
async function attempt(req: AttemptRequest): Promise<AttemptResult> {
  if (!req.alert)
    return { ok: false, retryable: false, error: `alert.${req.message.alert} is no longer applied` };
  const channel = { alert: req.alert, configDir: req.configDir, ...(req.env ? { env: req.env } : {}) };
  try {
    if (req.channel === 'email') {
      const email = await resolveChannel({ ...channel, channel: 'email' });
      return email
        ? await sendEmail({ email, message: req.message })
        : { ok: false, retryable: false, error: `alert.${req.alert.name} no longer has an email channel` };
    }
    const slack = await resolveChannel({ ...channel, channel: 'slack' });
    return slack
      ? await sendSlack({ slack, message: req.message })
      : { ok: false, retryable: false, error: `alert.${req.alert.name} no longer has a slack channel` };
  } catch (e) {
    // An unset variable or an unreadable config: the person can fix it, so the delivery waits.
    return { ok: false, retryable: true, error: errorMessage(e) };
  }
}

/** What attempts ending in `result` mean for the delivery record. */
function outcome(result: AttemptResult, attempts: number, createdAt: Date, now: Date): DeliveryUpdate {
  if (result.ok) return { status: 'sent', ...(result.note ? { note: result.note } : {}) };
  if (!result.retryable) return { status: 'failed', error: result.error };
  const next = new Date(now.getTime() + Math.max(retryDelayMs(attempts), result.retryAfterMs ?? 0));
  if (next.getTime() - createdAt.getTime() > RETRY_POLICY.giveUpMs)
    return { status: 'failed', error: `gave up after ${attempts} attempts: ${result.error}` };
  return { status: 'pending', error: result.error, nextAttemptAt: next };
}

/** A message written to the store, ready for its inline delivery attempts. */
export interface Queued {
  readonly alert: AppliedAlert;
  readonly message: AlertMessage;
  /** The in-app notification's id, when the alert has that channel. */
  readonly notification: number | null;
  /** The pending email / Slack deliveries. */
  readonly deliveries: readonly (ChannelTarget & { readonly id: number })[];
  readonly now: Date;
}

/**
 * Writes a message into the store: the in-app notification (delivered by being written) and one
 * pending delivery per email / Slack channel, held for this process's inline attempts. Call it in
 * the transaction that decided to send, so a crash cannot lose the message between the two.
 */
export async function enqueue(req: {
  sql: StoreSql;
  alert: AppliedAlert;
  message: AlertMessage;
  now: Date;
}): Promise<Queued> {
  const { sql, message, now } = req;
  let notification: number | null = null;
  if (req.alert.body.in_app) {
    notification = await storeNotification({ sql, message });
    const id = await recordDelivery({ sql, message, channel: 'in_app', target: 'in_app', now, holdMs: 0 });
    await sql.run(
      `UPDATE alert_deliveries SET status = 'sent', attempts = 1, sent_at = ?, next_attempt_at = NULL WHERE id = ?`,
      [now.toISOString(), id],
    );
  }
  const deliveries = [];
  for (const c of remoteChannels(req.alert.body))
    deliveries.push({
      ...c,
      id: await recordDelivery({ sql, message, ...c, now, holdMs: RETRY_POLICY.leaseMs }),
    });
  return { alert: req.alert, message, notification, deliveries, now };
}

/** What a delivery did: one line for the log, and a line per channel that did not deliver yet. */
export interface DispatchResult {
  readonly summary: string;
  readonly undelivered: readonly string[];
}

/**
 * Makes the quick inline attempts of a queued message on its channels, in parallel. Never throws
 * for a channel that cannot be reached: the delivery stays pending for `retryDeliveries`.
 */
export async function deliverQueued(req: {
  store: RuntimeStore;
  queued: Queued;
  configDir: string;
  env?: NodeJS.ProcessEnv;
}): Promise<DispatchResult> {
  const { message: m, now } = req.queued;
  const done: string[] = req.queued.notification === null ? [] : [`in-app #${req.queued.notification}`];
  const undelivered: string[] = [];
  const updates = await Promise.all(req.queued.deliveries.map((d) => deliverInline(req, d)));
  req.queued.deliveries.forEach((d, i) => {
    const update = updates[i]!;
    const line = `${d.channel} (${d.target}): ${describeUpdate(update, now)}`;
    done.push(line);
    if (update.status !== 'sent') undelivered.push(`alert ${m.alert}: ${m.title} → ${line}`);
  });
  return { summary: `alert ${m.alert}: ${m.title} → ${done.join('; ')}`, undelivered };
}

/** Enqueues a message in its own transaction and delivers it (when no decision shares the transaction). */
export async function dispatch(req: {
  store: RuntimeStore;
  alert: AppliedAlert;
  message: AlertMessage;
  configDir: string;
  now: Date;
  env?: NodeJS.ProcessEnv;
}): Promise<DispatchResult> {
  const queued = await req.store.sql.transaction((sql) => enqueue({ ...req, sql }));
  return deliverQueued({ ...req, queued });
}

/** The quick inline attempts of one delivery; stops early when attempts are slow. */
async function deliverInline(
  req: { store: RuntimeStore; queued: Queued; configDir: string; env?: NodeJS.ProcessEnv },
  d: ChannelTarget & { readonly id: number },
): Promise<DeliveryUpdate> {
  const { alert, message, now } = req.queued;
  const started = Date.now();
  let result: AttemptResult = { ok: false, retryable: true, error: 'not attempted' };
  let attempts = 0;
  while (attempts < RETRY_POLICY.inlineAttempts) {
    const env = req.env ? { env: req.env } : {};
    result = await attempt({ alert, channel: d.channel, message, configDir: req.configDir, ...env });
    attempts++;
    if (result.ok || !result.retryable || Date.now() - started > RETRY_POLICY.inlineBudgetMs) break;
    if (attempts < RETRY_POLICY.inlineAttempts)
      await sleep(RETRY_POLICY.inlineDelaysMs[attempts - 1] ?? 1000);
  }
  const update = outcome(result, attempts, now, now);
  await updateDelivery({ store: req.store, id: d.id, attempts, update, now });
  return update;
}

function describeUpdate(u: DeliveryUpdate, now: Date): string {
  switch (u.status) {
    case 'sent':
      return u.note ? `sent (${u.note})` : 'sent';
    case 'failed':
      return `not delivered: ${u.error}`;
    case 'pending':
      return `not delivered yet (${u.error}); retrying in ${Math.round((u.nextAttemptAt.getTime() - now.getTime()) / 1000)}s`;
  }
}

export interface RetryDeliveriesRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly configDir: string;
  /** Defaults to the current time. */
  readonly now?: Date;
  readonly log?: (line: string) => void;
  readonly env?: NodeJS.ProcessEnv;
  /** At most this many deliveries per call (default 50). */
  readonly limit?: number;
}

/**
 * Attempts every pending delivery that is due, once each, oldest first (called after every run
 * and by the agent's ticks). Returns how many were attempted.
 */
export async function retryDeliveries(req: RetryDeliveriesRequest): Promise<number> {
  const now = req.now ?? new Date();
  const due = await dueDeliveries({ store: req.store, now, limit: req.limit ?? 50 });
  let attempted = 0;
  for (const d of due) {
    if (d.channel === 'in_app') continue;
    if (!(await claimDelivery({ store: req.store, delivery: d, now, leaseMs: RETRY_POLICY.leaseMs })))
      continue;
    const alert = findAlert(req.state, d.alert);
    const result = await attempt({
      alert,
      channel: d.channel,
      message: d.message,
      configDir: req.configDir,
      env: req.env,
    });
    const update = outcome(result, d.attempts + 1, new Date(d.created_at), now);
    await updateDelivery({ store: req.store, id: d.id, attempts: d.attempts + 1, update, now });
    attempted++;
    req.log?.(
      `alert ${d.alert}: retried ${d.message.title} → ${d.channel} (${d.target}): ${describeUpdate(update, now)}`,
    );
  }
  return attempted;
}
