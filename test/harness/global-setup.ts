/**
 * vitest globalSetup: starts the real database servers named by BACKFLOW_TEST_SERVERS
 * (comma list of postgres, mariadb, clickhouse; default all; `none` for none) in parallel
 * and provides their URLs to test files as `inject('servers')`. A requested server that
 * cannot start fails the whole run: integration tests are never skipped silently.
 */
import { performance } from 'node:perf_hooks';
import type { TestProject } from 'vitest/node';
import { aptTimings } from './apt.js';
import * as clickhouse from './clickhouse.js';
import * as mariadb from './mariadb.js';
import * as postgres from './postgres.js';
import { requestedServers, type ServerKind, type StartOptions, type TestServer } from './server.js';

const starters: Record<ServerKind, (opts?: StartOptions) => Promise<TestServer>> = {
  postgres: postgres.start,
  mariadb: mariadb.start,
  clickhouse: clickhouse.start,
};

function log(line: string): void {
  process.stderr.write(`[test servers] ${line}\n`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const kinds = requestedServers(process.env.BACKFLOW_TEST_SERVERS);
  const t0 = performance.now();
  const results = await Promise.allSettled(
    kinds.map(async (kind) => {
      const server = await starters[kind]();
      log(`${kind} up at ${server.url} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return [kind, server] as const;
    }),
  );
  for (const t of aptTimings) log(`${t.step}: ${(t.ms / 1000).toFixed(1)} s`);

  const started = new Map<ServerKind, TestServer>();
  const failures: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') started.set(r.value[0], r.value[1]);
    else failures.push(`${kinds[i]}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
  });
  const stopAll = async () => {
    await Promise.all([...started.values()].map((s) => s.stop()));
  };
  if (failures.length > 0) {
    await stopAll();
    throw new Error(
      `could not start the test server(s) this run needs (set BACKFLOW_TEST_SERVERS to choose others):\n\n${failures.join('\n\n')}`,
    );
  }

  const servers: { -readonly [K in ServerKind]?: string } = {};
  for (const [kind, server] of started) servers[kind] = server.url;
  project.provide('servers', servers);
  return stopAll;
}
