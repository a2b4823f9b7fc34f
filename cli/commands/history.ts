import { open, rename, unlink } from 'node:fs/promises';
import { UserError } from '../../engine/errors.js';
import { exportHistory, HISTORY_FORMATS, type HistoryFormat } from '../../engine/status/history-export.js';
import { parseTime } from '../../engine/sync/overview.js';
import type { IO } from '../io.js';
import { withRuntime } from './sync.js';

export interface HistoryExportOptions {
  readonly dir: string;
  readonly since?: string;
  readonly until?: string;
  readonly format?: string;
  /** A file (written whole or not at all), or `-`/absent for stdout. */
  readonly out?: string;
  readonly mapping?: readonly string[];
}

/** `backflow history export --since 7d --format jsonl|csv --out FILE`: every run in the window, for audits. */
export async function historyExportCommand(io: IO, opts: HistoryExportOptions): Promise<number> {
  const format = formatOf(opts);
  const since = parseTime(opts.since ?? '7d', '--since');
  const until = opts.until ? parseTime(opts.until, '--until') : undefined;
  return withRuntime(io, opts.dir, async ({ store }) => {
    const request = {
      store,
      format,
      since,
      ...(until ? { until } : {}),
      ...(opts.mapping?.length ? { mappings: opts.mapping } : {}),
    };
    if (!opts.out || opts.out === '-') {
      await exportHistory({ ...request, write: (chunk) => writeOut(io.out, chunk) });
      return 0;
    }
    // Written beside the target and renamed over it: an export that fails leaves no half file.
    const tmp = `${opts.out}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w');
    let runs: number;
    try {
      ({ runs } = await exportHistory({ ...request, write: async (chunk) => void (await fh.write(chunk)) }));
      await fh.sync();
      await fh.close();
      await rename(tmp, opts.out);
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    io.err.write(
      `Exported ${runs} run${runs === 1 ? '' : 's'} started since ${since} to ${opts.out} (${format}).\n`,
    );
    return 0;
  });
}

function formatOf(opts: HistoryExportOptions): HistoryFormat {
  const format = opts.format ?? (opts.out?.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl');
  if (!HISTORY_FORMATS.includes(format as HistoryFormat))
    throw new UserError(`unknown --format ${format}`, { hint: 'use --format jsonl or --format csv' });
  return format as HistoryFormat;
}

function writeOut(stream: NodeJS.WritableStream, chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.write(chunk, (e) => (e ? reject(e) : undefined))) resolve();
    else stream.once('drain', resolve);
  });
}
