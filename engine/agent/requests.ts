import type { SyncRun } from '../sync/types.js';
import { newRunId } from './schedule.js';

/** A sync asked for through the API, waiting for a slot and the mapping's lease. */
export interface RequestedSync {
  /** The id its run will have. */
  readonly id: string;
  readonly mapping: string;
  readonly requested_at: string;
  readonly status: 'queued';
  /** Settles with the run once it has finished (undefined when it could not run, or the agent stopped first). */
  readonly done: Promise<SyncRun | undefined>;
}

export interface Requested extends RequestedSync {
  settle(run: SyncRun | undefined): void;
}

/** Syncs asked for through the API, at most one queued per mapping (asking again joins it). */
export class SyncRequests {
  private readonly byMapping = new Map<string, Requested>();

  add(mapping: string): Requested {
    const existing = this.byMapping.get(mapping);
    if (existing) return existing;
    let settle!: (run: SyncRun | undefined) => void;
    const done = new Promise<SyncRun | undefined>((resolve) => {
      settle = resolve;
    });
    const r: Requested = {
      id: newRunId(),
      mapping,
      requested_at: new Date().toISOString(),
      status: 'queued',
      done,
      settle,
    };
    this.byMapping.set(mapping, r);
    return r;
  }

  has(mapping: string): boolean {
    return this.byMapping.has(mapping);
  }

  /** Takes the request off the queue as its run starts (a new request may then queue behind it). */
  take(mapping: string): void {
    this.byMapping.delete(mapping);
  }

  byId(id: string): RequestedSync | undefined {
    return [...this.byMapping.values()].find((r) => r.id === id);
  }

  all(): readonly Requested[] {
    return [...this.byMapping.values()];
  }

  /** Drops (and settles as not run) the requests `keep` rejects; all of them without `keep`. */
  drop(keep: (mapping: string) => boolean = () => false): void {
    for (const [mapping, r] of this.byMapping)
      if (!keep(mapping)) {
        this.byMapping.delete(mapping);
        r.settle(undefined);
      }
  }
}
