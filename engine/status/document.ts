import { UserError } from '../errors.js';
import type { RunError, SyncRun } from '../sync/types.js';
import {
  type EntryKind,
  type EntryValue,
  type LastRun,
  type MappingHealthState,
  type MappingStatus,
  RECENT_RUNS,
  type RunSummary,
  STATUS_FORMAT_VERSION,
  type StatusDocument,
  type StatusEntry,
  type TopError,
} from './types.js';

/** Longest error message the document keeps; the full text stays in the run (`syncs show`). */
const MESSAGE_LIMIT = 2000;

export function emptyStatus(): StatusDocument {
  return { format_version: STATUS_FORMAT_VERSION, updated_at: null, mappings: {}, segment_integrations: {} };
}

/** `success` → healthy, `partial_success` → degraded, `failed` → failing. */
export function healthOf(status: SyncRun['status']): MappingHealthState {
  return status === 'success' ? 'healthy' : status === 'partial_success' ? 'degraded' : 'failing';
}

/** A mapping is failing when its last finished run has status `failed` (what `status --fail-on` gates on). */
export function isFailing(entry: MappingStatus | undefined): boolean {
  return entry?.last_run.status === 'failed';
}

/** The error group that failed the most records (the first one on a tie: the run lists them in order). */
export function topError(errors: readonly RunError[]): TopError | null {
  let top: RunError | undefined;
  for (const e of errors) if (!top || e.records > top.records) top = e;
  if (!top) return null;
  const message =
    top.message.length > MESSAGE_LIMIT ? `${top.message.slice(0, MESSAGE_LIMIT - 1)}…` : top.message;
  return { code: top.code, message, records: top.records, recommended_action: top.recommended_action };
}

export function summarise(run: SyncRun): RunSummary {
  return {
    id: run.id,
    status: run.status,
    started_at: run.started_at,
    finished_at: run.finished_at,
    extract: run.extract,
    load: { attempted: run.load.attempted, succeeded: run.load.succeeded, failed: run.load.failed },
  };
}

export function lastRunOf(run: SyncRun): LastRun {
  return {
    id: run.id,
    status: run.status,
    trigger: run.trigger,
    started_at: run.started_at,
    finished_at: run.finished_at,
    duration_ms: run.duration_ms,
    extract: run.extract,
    load: run.load,
    error_groups: run.errors.length,
    top_error: topError(run.errors),
  };
}

export interface NextMappingStatusRequest {
  /** The entry as it is now (undefined: none yet). */
  readonly previous: MappingStatus | undefined;
  /** The run that just finished. */
  readonly run: SyncRun;
  /** The mapping's latest runs from the runtime store (may include `run`); fills a new or stale entry. */
  readonly history: readonly SyncRun[];
  readonly now: Date;
}

/**
 * The mapping's entry after `run`: a pure function of the previous entry, the run and the store's
 * latest runs, so it is correct whatever order runs finish in and when applied twice.
 */
export function nextMappingStatus(req: NextMappingStatusRequest): MappingStatus {
  const { previous, run } = req;
  const full = new Map<string, SyncRun>();
  for (const r of [...req.history, run])
    if (r.mapping === run.mapping && r.status !== 'in_progress') full.set(r.id, r);
  const byId = new Map<string, RunSummary>((previous?.recent_runs ?? []).map((r) => [r.id, r]));
  for (const r of full.values()) byId.set(r.id, summarise(r));
  const recent = [...byId.values()].sort(newestFirst).slice(0, RECENT_RUNS);
  const newest = recent[0];
  const newestRun = newest ? full.get(newest.id) : undefined;
  const lastRun = newestRun
    ? lastRunOf(newestRun)
    : previous && newest?.id === previous.last_run.id
      ? previous.last_run
      : lastRunOf(run);
  const identity = newestRun ?? run;

  let streak = 0;
  while (streak < recent.length && recent[streak]?.status === 'failed') streak++;
  if (previous && recent.length > 0 && streak === recent.length) {
    // The whole window failed: the streak may reach further back than the window remembers.
    const known = new Set(previous.recent_runs.map((r) => r.id));
    const added = recent.filter((r) => !known.has(r.id)).length;
    streak = Math.max(streak, previous.consecutive_failures + added);
  }
  const success = recent.find((r) => r.status === 'success');

  return {
    mapping: run.mapping,
    model: identity.model,
    source: identity.source,
    destination: identity.destination,
    action: identity.action,
    health: healthOf(lastRun.status),
    last_run: lastRun,
    last_success_at: success
      ? (success.finished_at ?? success.started_at)
      : (previous?.last_success_at ?? null),
    consecutive_failures: streak,
    recent_runs: recent,
    updated_at: req.now.toISOString(),
  };
}

function newestFirst(a: RunSummary, b: RunSummary): number {
  if (a.started_at !== b.started_at) return a.started_at < b.started_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** One entry of the document (own properties only: a mapping may be called `constructor`). */
export function entryOf<K extends EntryKind>(
  doc: StatusDocument,
  kind: K,
  name: string,
): EntryValue<K> | undefined {
  const section: Readonly<Record<string, unknown>> =
    kind === 'mapping' ? doc.mappings : doc.segment_integrations;
  return Object.hasOwn(section, name) ? (section[name] as EntryValue<K> | undefined) : undefined;
}

/** The document with one entry replaced; `updated_at` moves to the entry's time when that is later. */
export function withEntry(doc: StatusDocument, entry: StatusEntry): StatusDocument {
  const at = entry.value.updated_at;
  const updated_at = doc.updated_at && doc.updated_at > at ? doc.updated_at : at;
  if (entry.kind === 'mapping')
    return { ...doc, updated_at, mappings: sortedWith(doc.mappings, entry.name, entry.value) };
  return {
    ...doc,
    updated_at,
    segment_integrations: sortedWith(doc.segment_integrations, entry.name, entry.value),
  };
}

function sortedWith<V>(entries: Readonly<Record<string, V>>, name: string, value: V): Record<string, V> {
  const all = { ...entries, [name]: value };
  return Object.fromEntries(
    Object.keys(all)
      .sort()
      .map((k) => [k, all[k] as V]),
  );
}

/** Parses a status document; a file that is not one is a UserError naming it. */
export function parseStatus(text: string, where: string): StatusDocument {
  let doc: Partial<StatusDocument>;
  try {
    doc = JSON.parse(text) as Partial<StatusDocument>;
  } catch (e) {
    throw new UserError(`${where} is corrupt: ${(e as Error).message}`, {
      hint: 'delete it: the next run of each mapping writes its entry again from the runtime store',
    });
  }
  if (!doc || typeof doc !== 'object' || typeof doc.format_version !== 'number')
    throw new UserError(`${where} is not a backflow status document`, {
      hint: 'delete it: the next run of each mapping writes its entry again from the runtime store',
    });
  if (doc.format_version !== STATUS_FORMAT_VERSION)
    throw new UserError(
      `${where} has format_version ${doc.format_version}, which this backflow does not know (expected ${STATUS_FORMAT_VERSION})`,
      { hint: 'upgrade backflow' },
    );
  return {
    format_version: STATUS_FORMAT_VERSION,
    updated_at: typeof doc.updated_at === 'string' ? doc.updated_at : null,
    mappings: isObject(doc.mappings) ? doc.mappings : {},
    segment_integrations: isObject(doc.segment_integrations) ? doc.segment_integrations : {},
  };
}

function isObject<T>(v: T | undefined): v is T {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}
