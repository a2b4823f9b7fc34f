import type { RunStatus, RunTrigger, SyncRun } from '../sync/types.js';

/** The version of the status document's shape (schemas/status.schema.json). */
export const STATUS_FORMAT_VERSION = 1;

/** How many runs a mapping's entry summarises. */
export const RECENT_RUNS = 20;

/** A mapping's health, from its last finished run: `success` → healthy, `partial_success` → degraded, `failed` → failing. */
export type MappingHealthState = 'healthy' | 'degraded' | 'failing';

/** The error group of a run that failed the most records, with what to do about it. */
export interface TopError {
  readonly code: string;
  readonly message: string;
  readonly records: number;
  readonly recommended_action: string;
}

/** One line of a mapping's run history in the status document. */
export interface RunSummary {
  readonly id: string;
  readonly status: RunStatus;
  readonly started_at: string;
  readonly finished_at: string | null;
  readonly extract: SyncRun['extract'];
  readonly load: { readonly attempted: number; readonly succeeded: number; readonly failed: number };
}

/** The last finished run of a mapping, with its full load counts and its top error. */
export interface LastRun extends Omit<RunSummary, 'load'> {
  readonly trigger: RunTrigger;
  readonly duration_ms: number | null;
  readonly load: SyncRun['load'];
  /** How many error groups the run had (`backflow syncs show ID` lists them all). */
  readonly error_groups: number;
  readonly top_error: TopError | null;
}

/** How a mapping is doing, updated after every run. */
export interface MappingStatus {
  readonly mapping: string;
  readonly model: string;
  readonly source: string;
  readonly destination: string;
  readonly action: string;
  readonly health: MappingHealthState;
  readonly last_run: LastRun;
  /** When the last run with status `success` finished (null: none known). */
  readonly last_success_at: string | null;
  /** Runs with status `failed` in a row, newest first; any other finished run resets it to 0. */
  readonly consecutive_failures: number;
  /** The last RECENT_RUNS finished runs, newest first. */
  readonly recent_runs: readonly RunSummary[];
  readonly updated_at: string;
}

/** The last error of a segment integration. */
export interface IntegrationError {
  readonly at: string;
  /** The query kind (`add`, `remove`, `clear`, `upsert_segment`, `delete_segment`). */
  readonly query: string;
  readonly message: string;
}

/** How a segment integration is doing, refreshed by the agent (and the segment commands). */
export interface IntegrationStatus {
  readonly integration: string;
  /** Profile events waiting to be flushed. */
  readonly queue_depth: number;
  readonly last_flush_at: string | null;
  /** The window the counts cover: the 24 hours before `updated_at`. */
  readonly window_since: string;
  readonly successful_queries_24h: number;
  readonly errors_24h: number;
  readonly last_error: IntegrationError | null;
  readonly updated_at: string;
}

/** The status document (`.backflow/status.json`, `backflow status --json`). */
export interface StatusDocument {
  readonly format_version: typeof STATUS_FORMAT_VERSION;
  /** When any entry was last updated (null: nothing recorded yet). */
  readonly updated_at: string | null;
  readonly mappings: Readonly<Record<string, MappingStatus>>;
  readonly segment_integrations: Readonly<Record<string, IntegrationStatus>>;
}

/** An entry of the document: its section and its name. */
export type StatusEntry =
  | { readonly kind: 'mapping'; readonly name: string; readonly value: MappingStatus }
  | { readonly kind: 'segment_integration'; readonly name: string; readonly value: IntegrationStatus };

export type EntryKind = StatusEntry['kind'];
export type EntryValue<K extends EntryKind> = Extract<StatusEntry, { kind: K }>['value'];

/** A request to replace one entry with a value computed from its current one (pure: no I/O inside). */
export interface EntryUpdate<K extends EntryKind> {
  readonly kind: K;
  readonly name: string;
  readonly update: (previous: EntryValue<K> | undefined) => EntryValue<K>;
}

/**
 * Where the status document lives (beside the state). Updates replace one entry atomically and never
 * take the state's apply lock nor touch its serial; two processes updating different entries never
 * lose each other's update.
 */
export interface StatusStore {
  /** Human description for messages (`status document .backflow/status.json`). */
  readonly description: string;
  /** The whole document (empty when nothing was recorded yet). */
  read(): Promise<StatusDocument>;
  /** Replaces one entry with `update(previous)`, serialised against other updates of the document. */
  update<K extends EntryKind>(req: EntryUpdate<K>): Promise<void>;
  close(): Promise<void>;
}
