import { BugError } from '../errors.js';
import type { StoreSql } from '../store/sql.js';
import type { RuntimeStore } from '../store/types.js';
import type { MessageKind } from './types.js';

/** Storm-control state of one alert about one topic while that topic is failing (`alert_incidents`). */
export interface Incident {
  readonly alert: string;
  readonly topic: string;
  /** The latest failing status seen (`failed`, `partial_success`, `segment_failed`). */
  readonly status: string;
  /** The status the last message (alert or reminder) reported. */
  readonly notified_status: string;
  readonly opened_at: string;
  readonly last_failure_at: string;
  readonly last_notified_at: string;
  /** Failing runs (or failed segment queries) since the incident opened. */
  readonly failing_runs: number;
  readonly last_run_id: string | null;
}

/**
 * What just happened to a topic an alert watches: `failing` (a status the alert is on), `ok` (a
 * success), or `neutral` (a status the alert does not watch, e.g. partial_success for an alert on
 * `[failed]`: neither a new failure nor a recovery).
 */
export interface Observation {
  readonly outcome: 'failing' | 'ok' | 'neutral';
  readonly status: string;
  readonly runId: string | null;
  readonly at: Date;
}

export interface IncidentPolicy {
  /** While failing, remind once this long after the last message (`repeat_after`). */
  readonly repeatAfterMs: number;
  /**
   * Topics without a success signal (segment integrations): a failure after this long without one
   * opens a new incident instead of counting as a reminder of an old one.
   */
  readonly closeAfterQuietMs?: number;
}

/** The message to send (or none) and the incident state afterwards (null: no incident). */
export interface Step {
  readonly send: MessageKind | null;
  readonly previous: Incident | null;
  readonly next: Incident | null;
}

/**
 * The storm-control state machine, pure: the first failure alerts; later failures are only
 * counted until `repeat_after` has passed since the last message, when one reminder goes out; the
 * first success ends the incident with a `recovered` message.
 */
export function nextStep(
  prev: Incident | null,
  obs: Observation,
  policy: IncidentPolicy,
  ids: { alert: string; topic: string },
): Step {
  if (obs.outcome === 'neutral') return { send: null, previous: prev, next: prev };
  if (obs.outcome === 'ok') return { send: prev ? 'recovered' : null, previous: prev, next: null };
  const at = obs.at.toISOString();
  const stale =
    prev !== null &&
    policy.closeAfterQuietMs !== undefined &&
    obs.at.getTime() - Date.parse(prev.last_failure_at) >= policy.closeAfterQuietMs;
  if (prev === null || stale) {
    const opened = {
      status: obs.status,
      notified_status: obs.status,
      failing_runs: 1,
      last_run_id: obs.runId,
    };
    return {
      send: 'alert',
      previous: prev,
      next: { ...ids, ...opened, opened_at: at, last_failure_at: at, last_notified_at: at },
    };
  }
  const counted: Incident = {
    ...prev,
    status: obs.status,
    last_failure_at: at,
    failing_runs: Number(prev.failing_runs) + 1,
    last_run_id: obs.runId,
  };
  if (obs.at.getTime() - Date.parse(prev.last_notified_at) < policy.repeatAfterMs)
    return { send: null, previous: prev, next: counted };
  return {
    send: 'reminder',
    previous: prev,
    next: { ...counted, notified_status: obs.status, last_notified_at: at },
  };
}

const COLUMNS =
  'alert, topic, status, notified_status, opened_at, last_failure_at, last_notified_at, failing_runs, last_run_id';

export interface ObserveRequest<T> {
  readonly store: RuntimeStore;
  readonly alert: string;
  readonly topic: string;
  readonly observation: Observation;
  readonly policy: IncidentPolicy;
  /** Runs inside the transaction when the step sends a message (to enqueue it atomically). */
  readonly onSend?: (tx: StoreSql, step: Step & { readonly send: MessageKind }) => Promise<T>;
}

/**
 * Applies an observation to the stored incident in one transaction (the row locked on PostgreSQL,
 * so agents sharing a store agree). When two processes open the same incident at once, the insert
 * of one wins and it sends the alert; the other sees the new row and counts its failure into it.
 */
export async function observe<T = undefined>(req: ObserveRequest<T>): Promise<{ step: Step; sent?: T }> {
  const ids = { alert: req.alert, topic: req.topic };
  return req.store.sql.transaction(async (tx) => {
    const lock = tx.dialect === 'postgres' ? ' FOR UPDATE' : '';
    for (let tries = 0; tries < 3; tries++) {
      const rows = await tx.all<Incident>(
        `SELECT ${COLUMNS} FROM alert_incidents WHERE alert = ? AND topic = ?${lock}`,
        [req.alert, req.topic],
      );
      const step = nextStep(rows[0] ?? null, req.observation, req.policy, ids);
      if (step.next === step.previous) return { step };
      if (step.next === null) {
        if (step.previous)
          await tx.run('DELETE FROM alert_incidents WHERE alert = ? AND topic = ?', [req.alert, req.topic]);
      } else if (step.previous === null) {
        // Lost the race to open it (PostgreSQL, read committed): the next SELECT sees the winner's row.
        if (!(await insert(tx, step.next))) continue;
      } else await update(tx, step.next);
      return step.send && req.onSend
        ? { step, sent: await req.onSend(tx, { ...step, send: step.send }) }
        : { step };
    }
    throw new BugError(`alert ${req.alert}: the incident of ${req.topic} keeps changing under this process`);
  });
}

async function insert(tx: StoreSql, i: Incident): Promise<boolean> {
  const { changes } = await tx.run(
    `INSERT INTO alert_incidents (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert, topic) DO NOTHING`,
    [
      i.alert,
      i.topic,
      i.status,
      i.notified_status,
      i.opened_at,
      i.last_failure_at,
      i.last_notified_at,
      i.failing_runs,
      i.last_run_id,
    ],
  );
  return changes === 1;
}

async function update(tx: StoreSql, i: Incident): Promise<void> {
  await tx.run(
    `UPDATE alert_incidents SET status = ?, notified_status = ?, opened_at = ?, last_failure_at = ?,
       last_notified_at = ?, failing_runs = ?, last_run_id = ? WHERE alert = ? AND topic = ?`,
    [
      i.status,
      i.notified_status,
      i.opened_at,
      i.last_failure_at,
      i.last_notified_at,
      i.failing_runs,
      i.last_run_id,
      i.alert,
      i.topic,
    ],
  );
}

/** Open incidents (every alert, or one), oldest first. */
export async function listIncidents(req: { store: RuntimeStore; alert?: string }): Promise<Incident[]> {
  const where = req.alert === undefined ? '' : ' WHERE alert = ?';
  return req.store.sql.all<Incident>(
    `SELECT ${COLUMNS} FROM alert_incidents${where} ORDER BY opened_at, alert, topic`,
    req.alert === undefined ? [] : [req.alert],
  );
}
