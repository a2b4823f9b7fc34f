import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import type { StoreSql } from '../store/sql.js';

/**
 * Leases in the runtime store (`agent_leases`, engine/store/features/agent.ts): a mapping's sync
 * (`mapping:NAME`) and an integration's batches (`integration:NAME`) run on one agent at a time.
 * A lease is taken by compare-and-swap on the row, renewed while the work runs, and released
 * after it; a holder that dies stops renewing, and the lease is free once it has expired.
 * Expiry is judged by the database's clock, so agents with skewed clocks agree.
 */

/** Who holds a lease: `host/pidns/pid/random`. */
export interface Holder {
  readonly id: string;
  readonly host: string;
  /** The pid namespace (`/proc/self/ns/pid`), when the platform has one. */
  readonly pidns: string | undefined;
  readonly pid: number;
}

/**
 * This process as a lease holder. `name` (BACKFLOW_AGENT_NAME, e.g. a pod name) replaces the host
 * name in the id: agents with different names never judge each other by pid, only by expiry.
 */
export function currentHolder(name?: string): Holder {
  let pidns: string | undefined;
  try {
    pidns = readlinkSync('/proc/self/ns/pid').replace(/\D/g, '') || undefined;
  } catch {
    pidns = undefined; // not Linux: the dead-process shortcut is off
  }
  const host = (name || hostname()).replace(/\//g, '_');
  const id = `${host}/${pidns ?? '-'}/${process.pid}/${randomUUID().slice(0, 8)}`;
  return { id, host, pidns, pid: process.pid };
}

/**
 * True when `holderId` is a process on this machine and pid namespace that no longer exists: its
 * lease is stale at once, so a restarted agent does not wait out the lease of the one it replaces.
 * A holder elsewhere (another host or container) is only ever judged by expiry.
 */
export function holderIsDead(holderId: string, me: Holder): boolean {
  const [host, pidns, pid] = holderId.split('/');
  if (!me.pidns || host !== me.host || pidns !== me.pidns) return false;
  const n = Number(pid);
  if (!Number.isSafeInteger(n) || n <= 0 || n === me.pid) return false;
  try {
    process.kill(n, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** A lease as stored. */
export interface LeaseRow {
  readonly name: string;
  readonly holder: string;
  readonly acquiredAt: number;
  readonly expiresAt: number;
  readonly runId: string | null;
  /** Whether it had expired by the database's clock when read. */
  readonly expired: boolean;
}

/** What `acquire` found and did. */
export type Acquired =
  | { readonly ok: true; readonly previous: LeaseRow | undefined }
  | { readonly ok: false; readonly heldBy: LeaseRow };

const NOW_MS = {
  sqlite: `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`,
  postgres: `(extract(epoch from clock_timestamp()) * 1000)::bigint`,
} as const;

export class Leases {
  private readonly now: string;
  /** Names this process holds or is taking right now: a second local taker is refused at once. */
  private readonly local = new Set<string>();

  constructor(
    private readonly sql: StoreSql,
    readonly holder: Holder,
    /** How long a lease lasts without renewal (settings.agent.lease). */
    readonly durationMs: number,
  ) {
    this.now = NOW_MS[sql.dialect];
  }

  async get(name: string): Promise<LeaseRow | undefined> {
    const rows = await this.sql.all<Record<string, unknown>>(
      `SELECT name, holder, acquired_at, expires_at, run_id, CASE WHEN expires_at <= ${this.now} THEN 1 ELSE 0 END AS expired
       FROM agent_leases WHERE name = ?`,
      [name],
    );
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  async list(): Promise<readonly LeaseRow[]> {
    const rows = await this.sql.all<Record<string, unknown>>(
      `SELECT name, holder, acquired_at, expires_at, run_id, CASE WHEN expires_at <= ${this.now} THEN 1 ELSE 0 END AS expired
       FROM agent_leases ORDER BY name`,
    );
    return rows.map(toRow);
  }

  /** Takes `name` when it is free, expired, held by a dead process here, or already ours. Never waits. */
  async acquire(name: string): Promise<Acquired> {
    const current = await this.get(name);
    if (!current) {
      const { changes } = await this.sql.run(
        `INSERT INTO agent_leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ${this.now}, ${this.now} + ?)
         ON CONFLICT (name) DO NOTHING`,
        [name, this.holder.id, this.durationMs],
      );
      if (changes === 1) return { ok: true, previous: undefined };
      const winner = await this.get(name);
      return winner ? { ok: false, heldBy: winner } : this.acquire(name);
    }
    const free =
      current.holder === this.holder.id || current.expired || holderIsDead(current.holder, this.holder);
    if (!free) return { ok: false, heldBy: current };
    // Compare-and-swap on (holder, expires_at): of two agents seeing the same stale row, one wins.
    const { changes } = await this.sql.run(
      `UPDATE agent_leases SET holder = ?, acquired_at = ${this.now}, expires_at = ${this.now} + ?, run_id = NULL
       WHERE name = ? AND holder = ? AND expires_at = ?`,
      [this.holder.id, this.durationMs, name, current.holder, current.expiresAt],
    );
    if (changes === 1) return { ok: true, previous: current.holder === this.holder.id ? undefined : current };
    const winner = await this.get(name);
    return winner ? { ok: false, heldBy: winner } : this.acquire(name);
  }

  /** Extends our lease; false when it is no longer ours (expired and taken over). */
  async renew(name: string, runId?: string): Promise<boolean> {
    const { changes } = await this.sql.run(
      `UPDATE agent_leases SET expires_at = ${this.now} + ?, run_id = COALESCE(?, run_id) WHERE name = ? AND holder = ?`,
      [this.durationMs, runId ?? null, name, this.holder.id],
    );
    return changes === 1;
  }

  async release(name: string): Promise<void> {
    await this.sql.run('DELETE FROM agent_leases WHERE name = ? AND holder = ?', [name, this.holder.id]);
  }

  /** Releases every lease we hold (shutdown). */
  async releaseAll(): Promise<void> {
    await this.sql.run('DELETE FROM agent_leases WHERE holder = ?', [this.holder.id]);
  }

  /**
   * Runs `work` holding `name`, renewing the lease every third of its duration. When a renewal
   * finds the lease gone, or renewals have failed for most of the lease, `work`'s signal aborts:
   * another agent may be about to take over. Returns undefined without running when it is held.
   */
  async withLease<T>(
    name: string,
    work: (ctx: {
      signal: AbortSignal;
      previous: LeaseRow | undefined;
      setRun: (id: string) => void;
    }) => Promise<T>,
    opts: { signal?: AbortSignal; onLost?: (reason: string) => void } = {},
  ): Promise<{ ran: true; value: T } | { ran: false; heldBy: LeaseRow | 'this agent' }> {
    if (this.local.has(name)) return { ran: false, heldBy: 'this agent' };
    this.local.add(name);
    let got: Acquired;
    try {
      got = await this.acquire(name);
    } catch (e) {
      this.local.delete(name);
      throw e;
    }
    if (!got.ok) {
      this.local.delete(name);
      return { ran: false, heldBy: got.heldBy };
    }
    const controller = new AbortController();
    const forward = () => controller.abort(opts.signal?.reason);
    if (opts.signal?.aborted) forward();
    opts.signal?.addEventListener('abort', forward, { once: true });
    let runId: string | undefined;
    let lastRenewed = Date.now();
    const lose = (reason: string) => {
      if (controller.signal.aborted) return;
      opts.onLost?.(reason);
      controller.abort(new Error(reason));
    };
    const timer = setInterval(
      () => {
        this.renew(name, runId).then(
          (ok) => {
            if (ok) lastRenewed = Date.now();
            else lose(`the lease ${name} was taken over by another agent`);
          },
          (e: unknown) => {
            if (Date.now() - lastRenewed > this.durationMs * 0.8)
              lose(`the lease ${name} could not be renewed: ${(e as Error).message}`);
          },
        );
      },
      Math.max(50, Math.floor(this.durationMs / 3)),
    );
    timer.unref();
    try {
      const value = await work({
        signal: controller.signal,
        previous: got.previous,
        setRun: (id) => {
          runId = id;
          void this.renew(name, id).catch(() => undefined);
        },
      });
      return { ran: true, value };
    } finally {
      clearInterval(timer);
      opts.signal?.removeEventListener('abort', forward);
      await this.release(name).catch(() => undefined);
      this.local.delete(name);
    }
  }

  /** Whether this process holds (or is taking) `name`. */
  holds(name: string): boolean {
    return this.local.has(name);
  }
}

function toRow(r: Record<string, unknown>): LeaseRow {
  return {
    name: String(r.name),
    holder: String(r.holder),
    acquiredAt: Number(r.acquired_at),
    expiresAt: Number(r.expires_at),
    runId: r.run_id === null || r.run_id === undefined ? null : String(r.run_id),
    expired: Number(r.expired) === 1,
  };
}
