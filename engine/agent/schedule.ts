import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import { parseDuration } from '../config/durations.js';
import type { Schedule } from '../config/types.gen.js';
import type { StateDocument } from '../state/types.js';
import type { RunStatus, RunTrigger, SyncRun } from '../sync/types.js';

/** What the scheduler knows of a mapping's recent runs (from the store). */
export interface Timing {
  readonly lastStart: number | undefined;
  readonly lastFinish: number | undefined;
  readonly lastStatus: RunStatus | undefined;
  /** The run-level error code of the last run (`connection_failed`, `abandoned`, …). */
  readonly lastCode: string | undefined;
  /** Runs in a row, newest first, whose status is `failed`. */
  readonly failures: number;
}

export const NEVER_RAN: Timing = {
  lastStart: undefined,
  lastFinish: undefined,
  lastStatus: undefined,
  lastCode: undefined,
  failures: 0,
};

/** A failed run is retried after 30 s, 1 m, 2 m, 4 m, 8 m; then only the schedule runs it. */
export const RETRY_BASE_MS = 30_000;
export const MAX_EARLY_RETRIES = 5;

/** Codes that mean the run was cut short from outside: the sync resumes at once. */
const RESUME_CODES = new Set(['abandoned', 'interrupted']);

/** Timing from a mapping's latest runs, newest first. */
export function timingOf(runs: readonly SyncRun[]): Timing {
  const latest = runs[0];
  if (!latest) return NEVER_RAN;
  let failures = 0;
  for (const r of runs) {
    if (r.status !== 'failed') break;
    failures++;
  }
  return {
    lastStart: Date.parse(latest.started_at),
    lastFinish: latest.finished_at ? Date.parse(latest.finished_at) : undefined,
    lastStatus: latest.status,
    lastCode: runCode(latest),
    failures,
  };
}

/** The error that failed the run as a whole (run-level errors count no records). */
export function runCode(run: SyncRun): string | undefined {
  return (
    run.errors.find((e) => e.records === 0)?.code ??
    (run.status === 'failed' ? run.errors[0]?.code : undefined)
  );
}

const crons = new Map<string, Cron>();

function cronFor(expr: string, timezone: string | undefined): Cron {
  const key = `${timezone ?? ''}\u0000${expr}`;
  let c = crons.get(key);
  if (!c) {
    c = new Cron(expr, { paused: true, ...(timezone ? { timezone } : {}) });
    crons.set(key, c);
  }
  return c;
}

/**
 * When the schedule next wants a run, given the last run's start: `every` counts from the last start;
 * `cron` is its next time after the last start (a time missed while no agent ran is caught up with
 * one run, not many). A mapping that never ran is due at once. `manual` never is.
 */
export function nextScheduled(
  schedule: Schedule | undefined,
  lastStart: number | undefined,
  now: number,
): number | undefined {
  if (schedule === undefined || schedule === 'manual') return undefined;
  if (lastStart === undefined) return now;
  if ('every' in schedule) {
    const every = parseDuration(schedule.every);
    return every === undefined ? undefined : lastStart + every;
  }
  const next = cronFor(schedule.cron, schedule.timezone).nextRun(new Date(lastStart));
  return next ? next.getTime() : undefined;
}

/**
 * When a scheduled mapping whose last run failed is tried again before its schedule: at once when
 * the run was cut short from outside (abandoned, interrupted), else with backoff for a few tries.
 * Record-level failures (`partial_success`) wait for the next scheduled run, like every later sync.
 */
export function retryAt(t: Timing): number | undefined {
  if (t.lastStatus !== 'failed' || t.lastFinish === undefined) return undefined;
  if (t.lastCode && RESUME_CODES.has(t.lastCode)) return t.lastFinish;
  if (t.failures > MAX_EARLY_RETRIES) return undefined;
  return t.lastFinish + RETRY_BASE_MS * 2 ** Math.max(0, t.failures - 1);
}

/** When a mapping is next due and why; undefined when only a request runs it. */
export function dueAt(
  body: { readonly enabled?: boolean; readonly schedule?: Schedule },
  t: Timing,
  now: number,
): { readonly at: number; readonly trigger: RunTrigger } | undefined {
  if (body.enabled === false || body.schedule === undefined || body.schedule === 'manual') return undefined;
  const scheduled = nextScheduled(body.schedule, t.lastStart, now);
  const retry = retryAt(t);
  if (retry !== undefined && (scheduled === undefined || retry < scheduled))
    return { at: retry, trigger: 'retry' };
  return scheduled === undefined ? undefined : { at: scheduled, trigger: 'schedule' };
}

/** A mapping as the scheduler sees it in the applied state. */
export interface MappingEntry {
  readonly name: string;
  readonly enabled?: boolean;
  readonly schedule?: Schedule;
}

/** A run id in the sync engine's format: `run_YYYYMMDDhhmmss_xxxxxxxx`. */
export function newRunId(now = new Date()): string {
  return `run_${now
    .toISOString()
    .replace(/[-:T.Z]/g, '')
    .slice(0, 14)}_${randomUUID().slice(0, 8)}`;
}

/** The applied mappings with what scheduling reads of them. */
export function mappingsOf(state: StateDocument | null): MappingEntry[] {
  return (state?.resources ?? [])
    .filter((r) => r.kind === 'mapping')
    .map((r) => ({ name: r.name, ...(r.body as { enabled?: boolean; schedule?: Schedule }) }));
}
