/**
 * One process at a time flushes a queue (integration, segment): order per profile depends on it.
 * A lease is a row with an owner and an expiry. A process that dies leaves its lease behind: it
 * expires, and on the same host it is taken over at once when the owner's pid is gone (so a
 * restarted `segments flush` or agent resumes without waiting).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { StoreSql } from '../store/sql.js';

/** How long a lease lasts without renewal; a flush renews it before every batch and while a query runs. */
export const LEASE_MS = 60_000;

export interface Queue {
  readonly integration: string;
  readonly segment: string;
}

/** A lease owner id: host, pid and a token (two flushes in one process are different owners). */
export function newOwner(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/** True when `owner` names a process on this host that no longer exists. */
export function ownerIsDead(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

const expiry = () => new Date(Date.now() + LEASE_MS).toISOString();

/** Takes the queue's lease for `owner`; false when a live process holds it. */
export async function acquireLease(sql: StoreSql, queue: Queue, owner: string): Promise<boolean> {
  const inserted = await sql.run(
    `INSERT INTO segment_leases (integration, segment, owner, expires_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (integration, segment) DO NOTHING`,
    [queue.integration, queue.segment, owner, expiry()],
  );
  if (inserted.changes === 1) return true;
  const taken = await sql.run(
    `UPDATE segment_leases SET owner = ?, expires_at = ?
      WHERE integration = ? AND segment = ? AND (expires_at < ? OR owner = ?)`,
    [owner, expiry(), queue.integration, queue.segment, new Date().toISOString(), owner],
  );
  if (taken.changes === 1) return true;
  const [row] = await sql.all<{ owner: string }>(
    'SELECT owner FROM segment_leases WHERE integration = ? AND segment = ?',
    [queue.integration, queue.segment],
  );
  if (!row || !ownerIsDead(row.owner)) return false;
  const stolen = await sql.run(
    'UPDATE segment_leases SET owner = ?, expires_at = ? WHERE integration = ? AND segment = ? AND owner = ?',
    [owner, expiry(), queue.integration, queue.segment, row.owner],
  );
  return stolen.changes === 1;
}

/** Extends the lease; false when it was lost (expired and taken by another process). */
export async function renewLease(sql: StoreSql, queue: Queue, owner: string): Promise<boolean> {
  const r = await sql.run(
    'UPDATE segment_leases SET expires_at = ? WHERE integration = ? AND segment = ? AND owner = ?',
    [expiry(), queue.integration, queue.segment, owner],
  );
  return r.changes === 1;
}

export async function releaseLease(sql: StoreSql, queue: Queue, owner: string): Promise<void> {
  await sql.run('DELETE FROM segment_leases WHERE integration = ? AND segment = ? AND owner = ?', [
    queue.integration,
    queue.segment,
    owner,
  ]);
}
