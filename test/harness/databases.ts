/**
 * For test files: a fresh database of its own on one of the servers the global setup
 * started, so files running in parallel never see each other's tables.
 */

import { inject } from 'vitest';
import * as clickhouse from './clickhouse.js';
import type {} from './context.js';
import * as mariadb from './mariadb.js';
import * as postgres from './postgres.js';
import { type ServerKind, uniqueDatabaseName } from './server.js';

const creators: Record<ServerKind, (url: string, name: string) => Promise<string>> = {
  postgres: postgres.createDatabase,
  mariadb: mariadb.createDatabase,
  clickhouse: clickhouse.createDatabase,
};

/** The server's URL, or undefined when this run did not start it (BACKFLOW_TEST_SERVERS). */
export function serverUrl(kind: ServerKind): string | undefined {
  return inject('servers')[kind];
}

/**
 * Creates an empty database named `prefix` plus a unique suffix on server `kind` and
 * returns its URL. Throws when the run did not start that server: guard the suite with
 * `describe.skipIf(!serverUrl(kind))`.
 */
export async function freshDatabase(kind: ServerKind, prefix: string): Promise<string> {
  const url = serverUrl(kind);
  if (!url) throw new Error(`the ${kind} test server was not started (BACKFLOW_TEST_SERVERS excludes it)`);
  return creators[kind](url, uniqueDatabaseName(prefix));
}
