import { parseDuration } from '../../engine/config/durations.js';
import { UserError } from '../../engine/errors.js';
import type { RunFilter } from '../../engine/store/types.js';
import type { RunStatus } from '../../engine/sync/types.js';
import { type IO, print, printJson } from '../io.js';
import { renderRunsTable, renderRunText } from '../render/run-text.js';
import { withRuntime } from './sync.js';

export interface SyncsOptions {
  readonly dir: string;
  readonly status?: string[];
  readonly since?: string;
  readonly until?: string;
  readonly period?: string;
  readonly model?: string[];
  readonly destination?: string[];
  readonly mapping?: string[];
  readonly mappingStatus?: string;
  readonly search?: string;
  readonly all?: boolean;
  readonly limit?: string;
  readonly json?: boolean;
}

const STATUSES: RunStatus[] = ['in_progress', 'success', 'partial_success', 'failed'];

/** `--since 24h` or an ISO date → ISO timestamp. */
export function parseTime(text: string, flag: string, now = new Date()): string {
  const ms = parseDuration(text);
  if (ms !== undefined) return new Date(now.getTime() - ms).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new UserError(`${flag} ${text} is neither a duration (24h, 7d) nor a date`, {
      hint: `e.g. ${flag} 24h or ${flag} 2026-11-01T00:00:00Z`,
    });
  return new Date(t).toISOString();
}

export function runFilter(o: Omit<SyncsOptions, 'dir' | 'json'>): RunFilter {
  const status = (o.status ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()) as RunStatus[];
  for (const s of status)
    if (!STATUSES.includes(s))
      throw new UserError(`unknown status ${s}`, { hint: `use one of: ${STATUSES.join(', ')}` });
  if (o.period && !['24h', '7d', '30d'].includes(o.period))
    throw new UserError(`unknown period ${o.period}`, { hint: 'use 24h, 7d or 30d, or --since/--until' });
  const since = o.since
    ? parseTime(o.since, '--since')
    : o.period
      ? parseTime(o.period, '--period')
      : undefined;
  return {
    ...(status.length ? { status } : {}),
    ...(since ? { since } : {}),
    ...(o.until ? { until: parseTime(o.until, '--until') } : {}),
    ...(o.model?.length ? { models: o.model } : {}),
    ...(o.destination?.length ? { destinations: o.destination } : {}),
    ...(o.mapping?.length ? { mappings: o.mapping } : {}),
    ...(o.search ? { search: o.search } : {}),
    latestPerMapping: !o.all,
    limit: o.limit ? Number(o.limit) : 200,
  };
}

/** `backflow syncs`: the sync overview — latest run per mapping, filtered. */
export async function syncsCommand(io: IO, opts: SyncsOptions): Promise<number> {
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    const enabled = new Map(
      (state?.resources ?? [])
        .filter((r) => r.kind === 'mapping')
        .map((r) => [r.name, r.body.enabled !== false ? 'enabled' : 'disabled']),
    );
    if (opts.mappingStatus && !['enabled', 'disabled'].includes(opts.mappingStatus))
      throw new UserError(`unknown mapping status ${opts.mappingStatus}`, {
        hint: 'use enabled or disabled',
      });
    const runs = (await store.listRuns(runFilter(opts)))
      .map((r) => ({ ...r, mapping_status: enabled.get(r.mapping) ?? 'removed' }))
      .filter((r) => !opts.mappingStatus || r.mapping_status === opts.mappingStatus);
    if (opts.json) printJson(io, runs);
    else print(io, renderRunsTable(runs, io.style));
    return 0;
  });
}

/** `backflow syncs show RUN_ID`: a run's detail with its failed records. */
export async function syncsShowCommand(
  io: IO,
  opts: { dir: string; runId: string; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ store }) => {
    const run = await store.getRun(opts.runId);
    if (!run)
      throw new UserError(`no sync run ${opts.runId}`, { hint: 'list runs with `backflow syncs --all`' });
    const failed = await store.listRunRecords(run.id, { status: 'failed', limit: 100 });
    if (opts.json) printJson(io, { ...run, failed_records: failed });
    else print(io, renderRunText(run, io.style, failed));
    return 0;
  });
}
