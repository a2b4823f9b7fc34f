import { parseDuration } from '../config/durations.js';
import { UserError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { RunFilter, RuntimeStore } from '../store/types.js';
import type { RunStatus, SyncRun } from './types.js';

/**
 * The sync overview's filters, as `backflow syncs` flags and `GET /api/syncs` query parameters
 * spell them. `flag` names how the caller spells a parameter in messages (`--since`, `since`).
 */
export interface OverviewOptions {
  readonly status?: readonly string[];
  readonly since?: string;
  readonly until?: string;
  readonly period?: string;
  readonly model?: readonly string[];
  readonly destination?: readonly string[];
  readonly mapping?: readonly string[];
  readonly mappingStatus?: string;
  readonly search?: string;
  readonly all?: boolean;
  readonly limit?: string;
}

/** A run in the overview, with the status of its mapping in the applied state. */
export type OverviewRun = SyncRun & { readonly mapping_status: 'enabled' | 'disabled' | 'removed' };

const STATUSES: readonly RunStatus[] = ['in_progress', 'success', 'partial_success', 'failed'];
const PERIODS = ['24h', '7d', '30d'];

/** How the caller names a parameter in messages: `--since` for the CLI, `since` for the API. */
export type ParamName = (name: string) => string;
const cliFlag: ParamName = (name) => `--${name.replace(/_/g, '-')}`;

/** `24h` (a duration ago) or an ISO date → ISO timestamp. */
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

/** Checks and converts overview options into the store's filter; a bad value is a UserError naming it. */
export function runFilter(o: OverviewOptions, name: ParamName = cliFlag): RunFilter {
  const status = (o.status ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()) as RunStatus[];
  for (const s of status)
    if (!STATUSES.includes(s))
      throw new UserError(`unknown status ${s}`, { hint: `use one of: ${STATUSES.join(', ')}` });
  if (o.period && !PERIODS.includes(o.period))
    throw new UserError(`unknown period ${o.period}`, {
      hint: `use 24h, 7d or 30d, or ${name('since')}/${name('until')}`,
    });
  const limit = o.limit === undefined ? 200 : Number(o.limit);
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new UserError(`${name('limit')} ${o.limit} is not a positive whole number`);
  const since = o.since
    ? parseTime(o.since, name('since'))
    : o.period
      ? parseTime(o.period, name('period'))
      : undefined;
  return {
    ...(status.length ? { status } : {}),
    ...(since ? { since } : {}),
    ...(o.until ? { until: parseTime(o.until, name('until')) } : {}),
    ...(o.model?.length ? { models: o.model } : {}),
    ...(o.destination?.length ? { destinations: o.destination } : {}),
    ...(o.mapping?.length ? { mappings: o.mapping } : {}),
    ...(o.search ? { search: o.search } : {}),
    latestPerMapping: !o.all,
    limit,
  };
}

/** The sync overview: runs matching the filters, each with its mapping's status in the applied state. */
export async function listOverview(req: {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly options: OverviewOptions;
  readonly name?: ParamName;
}): Promise<readonly OverviewRun[]> {
  const { mappingStatus } = req.options;
  const name = req.name ?? cliFlag;
  if (mappingStatus && !['enabled', 'disabled'].includes(mappingStatus))
    throw new UserError(`unknown ${name('mapping_status')} ${mappingStatus}`, {
      hint: 'use enabled or disabled',
    });
  const filter = runFilter(req.options, name);
  const enabled = new Map(
    (req.state?.resources ?? [])
      .filter((r) => r.kind === 'mapping')
      .map((r) => [r.name, r.body.enabled !== false ? ('enabled' as const) : ('disabled' as const)]),
  );
  return (await req.store.listRuns(filter))
    .map((r) => ({ ...r, mapping_status: enabled.get(r.mapping) ?? ('removed' as const) }))
    .filter((r) => !mappingStatus || r.mapping_status === mappingStatus);
}
