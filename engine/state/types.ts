import type { Effect, ResourceState } from '../plan/types.js';

export const STATE_VERSION = 1;

/** An effect recorded by apply for the sync engine and segment integrations to act on. */
export interface PendingEffect {
  /** `${serial}:${index}`: unique across applies, so consumers record what they did. */
  readonly id: string;
  readonly effect: Effect;
  readonly applied_at: string;
}

/** The pull request an apply came from (first syncs are reported back to it). */
export interface AppliedFrom {
  readonly repository: string;
  readonly pull_request: number;
  readonly sha?: string;
  /** Mappings whose first sync after this apply is reported on the pull request. */
  readonly mappings: readonly string[];
}

/** What was last applied. Resources hold secret references, never values. */
export interface StateDocument {
  readonly version: typeof STATE_VERSION;
  readonly serial: number;
  readonly lineage: string;
  readonly applied_at?: string;
  readonly resources: readonly ResourceState[];
  readonly pending_effects: readonly PendingEffect[];
  readonly applied_from?: AppliedFrom;
}

/** Who holds the state lock, for what and since when. */
export interface LockInfo {
  readonly id: string;
  readonly who: string;
  readonly operation: string;
  readonly created: string;
}

export interface LockHandle {
  readonly info: LockInfo;
  release(): Promise<void>;
}

/** Where state lives: `local` (a JSON file) or `postgres` (a table). */
export interface StateBackend {
  /** Human description for messages (`local state .backflow/state.json`). */
  readonly description: string;
  /** The state, or null when none was applied yet. A corrupt or unknown-version state throws UserError. */
  read(): Promise<StateDocument | null>;
  /** Takes the lock or fails at once with LockHeldError naming the holder. */
  lock(req: { operation: string; who?: string }): Promise<LockHandle>;
  /** Writes state atomically; the caller holds the lock. */
  write(doc: StateDocument, lock: LockHandle): Promise<void>;
  /** The current lock, if any. */
  currentLock(): Promise<LockInfo | null>;
  /** Releases a lock by id (`backflow state unlock ID`); an id that does not match is an error. */
  forceUnlock(id: string): Promise<void>;
  close(): Promise<void>;
}

export function lockOwner(): string {
  const user = process.env.USER ?? process.env.USERNAME ?? 'unknown';
  return `${user}@${process.env.HOSTNAME ?? (globalThis as { hostname?: string }).hostname ?? 'localhost'} (pid ${process.pid})`;
}
