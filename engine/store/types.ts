import type { Change } from '../../providers/sdk.js';
import type { RunRecord, RunStatus, SyncRun } from '../sync/types.js';
import type { StoreSql } from './sql.js';

/** Filters of the sync overview (`backflow syncs`, `GET /api/syncs`). */
export interface RunFilter {
  readonly status?: readonly RunStatus[];
  readonly since?: string;
  readonly until?: string;
  readonly mappings?: readonly string[];
  readonly models?: readonly string[];
  readonly destinations?: readonly string[];
  readonly search?: string;
  /** Only the latest run per mapping. */
  readonly latestPerMapping?: boolean;
  readonly limit?: number;
}

/** A record that failed and is retried by later syncs until `retry.max_age`. */
export interface PendingRecord {
  readonly key: string;
  readonly change: Change;
  /** Hash of the content that failed; a changed record restarts its retry window. */
  readonly hash: string | null;
  readonly firstFailedAt: string;
  readonly lastFailedAt: string;
  readonly attempts: number;
  readonly code: string;
  readonly message: string;
  readonly expired: boolean;
}

/** One snapshot entry: a key and the content hash last loaded for it. */
export type SnapshotEntry = readonly [key: string, hash: string];

/**
 * The runtime store: runs, per-mapping snapshots (key → content hash of the mapped record),
 * pending failed records, replay sets, and (later) segment queues and notifications.
 * SQLite by default, PostgreSQL for teams; both pass the same tests.
 */
/**
 * A page of the snapshot as text: `count` lines `key<TAB>hash` joined by newlines, in any order. The
 * text is ambiguous when a key holds a tab or a newline (hashes never do): `entries()` then reads the
 * same page as entries.
 */
export interface SnapshotText {
  readonly text: string;
  readonly count: number;
  entries(): Promise<readonly SnapshotEntry[]>;
}

export interface RuntimeStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Raw SQL for features that keep their own tables (engine/store/features/). */
  readonly sql: StoreSql;
  /** Applies pending migrations (idempotent). */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // --- runs -------------------------------------------------------------------------------
  insertRun(run: SyncRun): Promise<void>;
  /** Replaces the stored run (status, counts, errors, finished_at). */
  updateRun(run: SyncRun): Promise<void>;
  getRun(id: string): Promise<SyncRun | undefined>;
  listRuns(filter: RunFilter): Promise<readonly SyncRun[]>;
  /**
   * Deletes finished runs started before `before` (ISO-8601) with their records, except each
   * mapping's newest run and newest successful run (what status, metrics and schedules read).
   * Returns how many runs went.
   */
  pruneRuns(req: { before: string }): Promise<number>;
  /** Runs still `in_progress` (for crash recovery: marked failed/abandoned on start). */
  listUnfinishedRuns(): Promise<readonly SyncRun[]>;
  addRunRecords(runId: string, records: readonly RunRecord[]): Promise<void>;
  listRunRecords(
    runId: string,
    req: { status?: RunRecord['status']; limit?: number; offset?: number },
  ): Promise<readonly RunRecord[]>;

  // --- snapshot and a run's confirmed outcomes -------------------------------------------------
  /**
   * The mapping's snapshot — key → content hash of what was last loaded — in key order (byte order),
   * `pageSize` entries per page. Keyset pagination: no cursor is held between pages.
   */
  snapshotPages(req: { mapping: string; pageSize: number }): AsyncIterable<readonly SnapshotEntry[]>;
  /**
   * The same pages, each as one text (SnapshotText): what a sync loads into its key index, without a
   * string per key and per hash.
   */
  snapshotText(req: { mapping: string; pageSize: number }): AsyncIterable<SnapshotText>;
  /**
   * Records outcomes run `runId` confirmed: the hash each key now has downstream, or null for a
   * delivered delete. Each key at most once per run. Nothing changes in the snapshot until
   * `commitSnapshot`.
   */
  addOutcomes(req: {
    runId: string;
    outcomes: readonly { key: string; hash: string | null }[];
  }): Promise<void>;
  /** Applies the run's outcomes to the mapping's snapshot in one transaction, then forgets them. */
  commitSnapshot(req: { mapping: string; runId: string }): Promise<void>;
  /** Forgets the outcomes of a run that will not commit; the snapshot is untouched. */
  discardStage(req: { runId: string }): Promise<void>;
  /** Forgets the mapping's snapshot: the next sync treats every record as added (`reset`). */
  resetSnapshot(mapping: string): Promise<void>;
  snapshotSize(mapping: string): Promise<number>;

  // --- pending failed records ---------------------------------------------------------------
  getPending(mapping: string, keys: readonly string[]): Promise<ReadonlyMap<string, PendingRecord>>;
  upsertPending(
    mapping: string,
    records: readonly Omit<PendingRecord, 'firstFailedAt' | 'attempts'>[],
  ): Promise<void>;
  clearPending(mapping: string, keys: readonly string[]): Promise<void>;
  countPending(mapping: string): Promise<number>;
  /** Keys of the mapping's pending records, in key order. */
  pendingKeys(mapping: string): Promise<readonly string[]>;

  // --- small facts (reset requests, consumed apply effects, reported first syncs) ----------
  getMeta(key: string): Promise<string | undefined>;
  /** Sets a fact; `null` removes it. */
  setMeta(key: string, value: string | null): Promise<void>;
}
