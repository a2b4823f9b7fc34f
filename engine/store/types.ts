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

/** How a key ended in this run; `stage` rows are committed into the snapshot only when the run finishes. */
export type KeyOutcome = 'unchanged' | 'ok' | 'failed' | 'skipped' | 'expired';

/**
 * The runtime store: runs, per-mapping snapshots (key → content hash of the mapped record),
 * pending failed records, replay sets, and (later) segment queues and notifications.
 * SQLite by default, PostgreSQL for teams; both pass the same tests.
 */
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
  /** Runs still `in_progress` (for crash recovery: marked failed/abandoned on start). */
  listUnfinishedRuns(): Promise<readonly SyncRun[]>;
  addRunRecords(runId: string, records: readonly RunRecord[]): Promise<void>;
  listRunRecords(
    runId: string,
    req: { status?: RunRecord['status']; limit?: number; offset?: number },
  ): Promise<readonly RunRecord[]>;

  // --- diff working set of one run ------------------------------------------------------------
  /**
   * Records the keys of an extracted batch for run `runId`; returns for each key the snapshot hash
   * (null when absent) or `duplicate` when the key was already seen in this run.
   */
  stageKeys(req: {
    mapping: string;
    runId: string;
    keys: readonly string[];
  }): Promise<readonly (string | null | { duplicate: true })[]>;
  /** Sets the outcome (and the hash to commit) of keys, inserting keys not staged yet (deleted records). */
  markKeys(req: {
    runId: string;
    outcomes: readonly { key: string; outcome: KeyOutcome; hash: string | null }[];
  }): Promise<void>;
  /** Snapshot keys of `mapping` not staged by `runId` (the deleted records), in batches ordered by key (keyset pagination: keys marked meanwhile must not disturb it). */
  unseenKeys(req: {
    mapping: string;
    runId: string;
    batchSize: number;
  }): AsyncIterable<readonly { key: string; hash: string }[]>;
  /**
   * Atomically applies the run's outcomes to the snapshot: `ok`/`skipped` keys take their staged hash
   * (a null hash removes the key: a delivered delete), drops pending records of keys the run neither
   * extracted nor deleted (gone from the model before they ever loaded), and drops the working set.
   */
  /**
   * With `complete: false` (a run that failed part-way) only the confirmed outcomes are applied and
   * no pending record is dropped: the run did not see every key.
   */
  commitSnapshot(req: { mapping: string; runId: string; complete?: boolean }): Promise<void>;
  /** Drops the working set of an aborted run; the snapshot is untouched. */
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

  // --- small facts (reset requests, consumed apply effects, reported first syncs) ----------
  getMeta(key: string): Promise<string | undefined>;
  /** Sets a fact; `null` removes it. */
  setMeta(key: string, value: string | null): Promise<void>;
}
