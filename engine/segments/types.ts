/**
 * Public shapes of segment integrations: queued events, flush reports, queue depth and statistics.
 * JSON output of the CLI (`segments flush|queue|stats --json`) and the agent's API prints these as-is.
 */

/** What happened to a segment; each kind runs the integration's query of the same name. */
export type EventKind = 'add' | 'remove' | 'clear' | 'upsert_segment' | 'delete_segment';

/** Events that carry one profile each and are batched (`batch.size`, `batch.timeout`). */
export type ProfileEventKind = 'add' | 'remove';

export const EVENT_KINDS: readonly EventKind[] = [
  'add',
  'remove',
  'clear',
  'upsert_segment',
  'delete_segment',
];

export function isProfileKind(kind: string): kind is ProfileEventKind {
  return kind === 'add' || kind === 'remove';
}

/** A profile as queued: field name → value (JSON-safe). */
export type Profile = Readonly<Record<string, unknown>>;

/** One query run by a flush. */
export interface BatchOutcome {
  readonly integration: string;
  readonly segment: string;
  readonly kind: EventKind;
  /** Profiles in the batch (0 for clear and segment events). */
  readonly profiles: number;
  readonly status: 'ok' | 'failed' | 'skipped';
  /** 1 for the first try of this batch. */
  readonly attempt: number;
  readonly duration_ms: number;
  /** The batch had been started by a process that died or was killed: it ran again (at-least-once). */
  readonly resumed: boolean;
  readonly error?: string;
  /** When a failed batch is tried again. */
  readonly next_attempt_at?: string;
}

/** Why a queue still holds events after a flush. */
export type WaitReason =
  | 'not_due'
  | 'backoff'
  | 'paused'
  | 'locked'
  | 'integration_missing'
  | 'failed'
  | 'aborted';

export interface QueueWaiting {
  readonly integration: string;
  readonly segment: string;
  readonly reason: WaitReason;
  /** For `not_due` and `backoff`: when the queue becomes due. */
  readonly until?: string;
}

/** The result of `flushDue`. */
export interface FlushReport {
  readonly started_at: string;
  readonly finished_at: string;
  /** Successful queries. */
  readonly queries: number;
  /** Failed queries (their batches stay queued and are retried with backoff). */
  readonly failed: number;
  /** Profiles delivered by successful add/remove queries. */
  readonly profiles: number;
  readonly batches: readonly BatchOutcome[];
  readonly waiting: readonly QueueWaiting[];
  /** Problems that did not stop the flush (an alert that could not be sent, an apply effect that cannot run). */
  readonly warnings: readonly string[];
}

/** Depth of one queue (`segments queue`, the agent's metrics). */
export interface QueueDepth {
  readonly integration: string;
  readonly segment: string;
  /** Events waiting, in batches or not. */
  readonly events: number;
  /** Add/remove events waiting. */
  readonly profiles: number;
  /** Events in a batch that was formed and not yet delivered (running, failed or interrupted). */
  readonly in_flight: number;
  readonly oldest_at: string | null;
  /** Attempts of the batch at the head of the queue (0 when none failed). */
  readonly attempts: number;
  readonly next_attempt_at: string | null;
  readonly last_error: string | null;
  /** From the applied state, when given: the integration is paused (`enabled: false`). */
  readonly paused?: boolean;
  /** From the applied state, when given: the integration is no longer in it. */
  readonly missing?: boolean;
}

/** One failed query in `segments stats`. */
export interface QueryError {
  readonly time: string;
  readonly segment: string;
  readonly kind: EventKind;
  readonly message: string;
  readonly attempt: number;
  readonly profiles: number;
}

/** `segments stats INTEGRATION --since 24h`. */
export interface SegmentStats {
  readonly integration: string;
  readonly since: string;
  readonly until: string;
  readonly successful_queries: number;
  readonly failed_queries: number;
  /** Profiles delivered by successful add/remove queries. */
  readonly profiles: number;
  readonly by_kind: Readonly<Partial<Record<EventKind, { readonly ok: number; readonly failed: number }>>>;
  /** Oldest first. */
  readonly errors: readonly QueryError[];
}

/** What an enqueue call stored. */
export interface EnqueueResult {
  readonly segment: string;
  readonly kind: EventKind | 'resync';
  /** Profiles in the request (after de-duplication by key). */
  readonly profiles: number;
  /** Integrations the events were queued for. */
  readonly integrations: readonly string[];
  /** Event rows stored (one per integration and profile). */
  readonly events: number;
}

/** One model-backed segment's refresh. */
export interface RefreshReport {
  readonly segment: string;
  readonly model: string;
  readonly rows: number;
  readonly added: number;
  readonly removed: number;
  /** Members whose fields changed: sent again as additions (templates are upserts). */
  readonly changed: number;
  readonly unchanged: number;
  /** Rows whose key another row of this refresh already had (the first one counts). */
  readonly duplicates: number;
  /** Rows with a NULL key: not members. */
  readonly missing_key: number;
  readonly events: number;
}
