import type { Change } from '../../providers/sdk.js';

export type RunStatus = 'in_progress' | 'success' | 'partial_success' | 'failed';
export type RunTrigger = 'manual' | 'schedule' | 'api' | 'replay' | 'retry' | 'apply';

export interface ChangeCounts {
  readonly succeeded: number;
  readonly failed: number;
}

/** A group of record failures with the same code (the seed's "failed reason"). */
export interface RunError {
  readonly code: string;
  readonly message: string;
  /** How many records failed this way. */
  readonly records: number;
  readonly recommended_action: string;
  /** Up to three payloads of failing records. */
  readonly sample_payloads: readonly unknown[];
}

/** A sync run as printed by `sync --json` and `syncs show --json` (SPEC §3). */
export interface SyncRun {
  readonly id: string;
  readonly mapping: string;
  readonly model: string;
  readonly source: string;
  readonly destination: string;
  readonly action: string;
  readonly status: RunStatus;
  readonly trigger: RunTrigger;
  readonly started_at: string;
  readonly finished_at: string | null;
  readonly duration_ms: number | null;
  readonly extract: {
    readonly total: number;
    readonly added: number;
    readonly updated: number;
    readonly deleted: number;
  };
  readonly load: {
    readonly attempted: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly added: ChangeCounts;
    readonly updated: ChangeCounts;
    readonly deleted: ChangeCounts;
  };
  readonly errors: readonly RunError[];
}

/** A record a run selected, kept for drill-down (failed records) and replay. */
export interface RunRecord {
  readonly key: string;
  readonly change: Change;
  readonly status: 'ok' | 'failed' | 'expired';
  readonly code?: string;
  readonly message?: string;
  /**
   * The mapped fields of a record that failed or expired, for drill-down. Null for deletes, and for
   * loaded records: those are kept by key (replay reads their current data from the model).
   */
  readonly payload: Readonly<Record<string, unknown>> | null;
}

export function emptyRun(
  base: Pick<
    SyncRun,
    'id' | 'mapping' | 'model' | 'source' | 'destination' | 'action' | 'trigger' | 'started_at'
  >,
): SyncRun {
  return {
    ...base,
    status: 'in_progress',
    finished_at: null,
    duration_ms: null,
    extract: { total: 0, added: 0, updated: 0, deleted: 0 },
    load: {
      attempted: 0,
      succeeded: 0,
      failed: 0,
      added: { succeeded: 0, failed: 0 },
      updated: { succeeded: 0, failed: 0 },
      deleted: { succeeded: 0, failed: 0 },
    },
    errors: [],
  };
}
