import type { SyncRun } from '../sync/types.js';

export type LogLevel = 'info' | 'warn' | 'error';

/** Structured fields of one log line (JSON values). */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * The agent's log: one JSON object per line when stdout is not a terminal (for log shippers),
 * a short human line on a terminal. Every line has `time`, `level`, `event` and `message`.
 */
export interface AgentLogger {
  log(level: LogLevel, event: string, message: string, fields?: LogFields): void;
  info(event: string, message: string, fields?: LogFields): void;
  warn(event: string, message: string, fields?: LogFields): void;
  error(event: string, message: string, fields?: LogFields): void;
}

export interface LoggerRequest {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  /** Defaults to JSON unless `out` is a terminal. */
  readonly format?: 'json' | 'text';
  readonly now?: () => Date;
}

export function createLogger(req: LoggerRequest): AgentLogger {
  const json = (req.format ?? (req.out.isTTY ? 'text' : 'json')) === 'json';
  const now = req.now ?? (() => new Date());
  const log = (level: LogLevel, event: string, message: string, fields: LogFields = {}) => {
    const time = now();
    const line = json
      ? JSON.stringify({ time: time.toISOString(), level, event, message, ...fields })
      : `${time.toISOString().slice(11, 19)} ${level === 'info' ? '' : `${level.toUpperCase()} `}${message}`;
    req.out.write(`${line}\n`);
  };
  return {
    log,
    info: (e, m, f) => log('info', e, m, f),
    warn: (e, m, f) => log('warn', e, m, f),
    error: (e, m, f) => log('error', e, m, f),
  };
}

/** The fields of a `run_finished` line: status, duration and counts, error codes with record counts. */
export function runFields(run: SyncRun): LogFields {
  return {
    run_id: run.id,
    mapping: run.mapping,
    trigger: run.trigger,
    status: run.status,
    duration_ms: run.duration_ms,
    extract: run.extract,
    load: { attempted: run.load.attempted, succeeded: run.load.succeeded, failed: run.load.failed },
    errors: run.errors.map((e) => ({ code: e.code, records: e.records, message: e.message })),
  };
}

/** `users_to_crm success in 1.2s: 40 extracted (3 added, 1 updated, 0 deleted), 4 sent, 0 failed`. */
export function runSummary(run: SyncRun): string {
  const e = run.extract;
  const seconds = ((run.duration_ms ?? 0) / 1000).toFixed(1);
  const first = run.errors[0];
  return (
    `${run.mapping} ${run.status} in ${seconds}s: ${e.total} extracted (${e.added} added, ${e.updated} updated, ${e.deleted} deleted), ` +
    `${run.load.succeeded} sent, ${run.load.failed} failed [${run.id}]` +
    (first ? `; ${first.code}: ${first.message}` : '')
  );
}
