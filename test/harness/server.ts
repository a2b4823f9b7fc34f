/** What every server starter (postgres.ts, mariadb.ts, clickhouse.ts) takes and returns. */
import type { TestServers } from './context.js';

/** The servers a run can start (the keys of BACKFLOW_TEST_SERVERS). */
export type ServerKind = keyof TestServers;

/** Options shared by the server starters. */
export interface StartOptions {
  /** How long to wait for the server to answer once launched (default 60 s). */
  readonly timeoutMs?: number;
}

/** A running throwaway server. */
export interface TestServer {
  /** Connection URL of the server's default database, as admin with no password. */
  readonly url: string;
  /** Shuts the server down and removes its directory; safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * A database name unique to this test file and run: `prefix` (letters, digits, `_`) plus
 * a random suffix, so parallel files and repeated runs never share a database.
 */
export function uniqueDatabaseName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .slice(0, 40);
  return `${clean}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

const ALL: readonly ServerKind[] = ['postgres', 'mariadb', 'clickhouse'];

/** Parses BACKFLOW_TEST_SERVERS; an unknown name is an error, not a silent no-op. */
export function requestedServers(value: string | undefined): ServerKind[] {
  const raw = (value ?? '').trim().toLowerCase();
  if (raw === '' || raw === 'all') return [...ALL];
  if (raw === 'none') return [];
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((n) => !(ALL as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `BACKFLOW_TEST_SERVERS names unknown server(s) ${unknown.join(', ')}; use a comma list of ${ALL.join(', ')}, or none`,
    );
  }
  return [...new Set(names as ServerKind[])];
}
