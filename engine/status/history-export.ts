import { UserError } from '../errors.js';
import type { RunFilter, RuntimeStore } from '../store/types.js';
import type { SyncRun } from '../sync/types.js';

export type HistoryFormat = 'jsonl' | 'csv';
export const HISTORY_FORMATS: readonly HistoryFormat[] = ['jsonl', 'csv'];

/** The CSV columns, in order: a run's identity, times, every count, and its errors. */
export const CSV_COLUMNS = [
  'id',
  'mapping',
  'model',
  'source',
  'destination',
  'action',
  'status',
  'trigger',
  'started_at',
  'finished_at',
  'duration_ms',
  'extract_total',
  'extract_added',
  'extract_updated',
  'extract_deleted',
  'load_attempted',
  'load_succeeded',
  'load_failed',
  'load_added_succeeded',
  'load_added_failed',
  'load_updated_succeeded',
  'load_updated_failed',
  'load_deleted_succeeded',
  'load_deleted_failed',
  'failed_records',
  'error_codes',
  'errors',
] as const;

export interface ExportHistoryRequest {
  readonly store: RuntimeStore;
  readonly format: HistoryFormat;
  /** ISO time: runs started at or after it. */
  readonly since: string;
  /** ISO time: runs started at or before it (default: now). */
  readonly until?: string;
  readonly mappings?: readonly string[];
  /** Receives the output in pieces; awaited, so a slow file applies back-pressure. */
  readonly write: (chunk: string) => Promise<void>;
  /** Runs fetched per store query. */
  readonly pageSize?: number;
}

/**
 * Every run started in the window, newest first (the order of `backflow syncs --all`), as JSON lines
 * (each line the run exactly as `syncs show --json` prints it) or CSV (RFC 4180: a header row, CRLF,
 * fields quoted when they hold a comma, quote, CR, LF or edge spaces). Read page by page: the
 * window may hold more runs than fit in memory. Returns how many runs were written.
 */
export async function exportHistory(req: ExportHistoryRequest): Promise<{ runs: number }> {
  if (!HISTORY_FORMATS.includes(req.format))
    throw new UserError(`unknown history format ${req.format}`, {
      hint: 'use --format jsonl or --format csv',
    });
  if (req.format === 'csv') await req.write(csvLine(CSV_COLUMNS));
  let runs = 0;
  for await (const page of runPages(req)) {
    const text = page.map((run) =>
      req.format === 'csv' ? csvLine(csvRow(run)) : `${JSON.stringify(run)}\n`,
    );
    await req.write(text.join(''));
    runs += page.length;
  }
  return { runs };
}

/** Pages newest first; the next page ends at the oldest start time seen (inclusive), skipping what was seen. */
async function* runPages(req: ExportHistoryRequest): AsyncIterable<readonly SyncRun[]> {
  let limit = req.pageSize ?? 500;
  let until = req.until;
  let last: SyncRun | undefined;
  for (;;) {
    const filter: RunFilter = {
      since: req.since,
      ...(until !== undefined ? { until } : {}),
      ...(req.mappings?.length ? { mappings: req.mappings } : {}),
      limit,
    };
    const rows = await req.store.listRuns(filter);
    const fresh = last ? rows.filter((r) => olderThan(r, last!)) : rows;
    if (fresh.length > 0) yield fresh;
    if (rows.length < limit) return;
    if (fresh.length === 0) {
      limit *= 2; // a whole page shares one start time: widen the page rather than loop
      continue;
    }
    last = fresh[fresh.length - 1]!;
    until = last.started_at;
  }
}

/** Whether `r` comes after `last` in the newest-first order (started_at desc, id desc). */
function olderThan(r: SyncRun, last: SyncRun): boolean {
  const a = Date.parse(r.started_at);
  const b = Date.parse(last.started_at);
  return a < b || (a === b && r.id < last.id);
}

export function csvRow(run: SyncRun): readonly (string | number | null)[] {
  const l = run.load;
  const e = run.extract;
  return [
    run.id,
    run.mapping,
    run.model,
    run.source,
    run.destination,
    run.action,
    run.status,
    run.trigger,
    run.started_at,
    run.finished_at,
    run.duration_ms,
    e.total,
    e.added,
    e.updated,
    e.deleted,
    l.attempted,
    l.succeeded,
    l.failed,
    l.added.succeeded,
    l.added.failed,
    l.updated.succeeded,
    l.updated.failed,
    l.deleted.succeeded,
    l.deleted.failed,
    run.errors.reduce((n, err) => n + err.records, 0),
    run.errors.map((err) => err.code).join(';'),
    run.errors.length
      ? JSON.stringify(
          run.errors.map(({ code, message, records, recommended_action }) => ({
            code,
            message,
            records,
            recommended_action,
          })),
        )
      : '',
  ];
}

export function csvLine(fields: readonly (string | number | null)[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

/** One CSV field: empty for null, quoted (quotes doubled) when it holds `,` `"` CR LF or edge spaces. */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
