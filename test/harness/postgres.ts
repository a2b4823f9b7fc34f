/**
 * A throwaway PostgreSQL server for tests: installs the `postgresql` package when missing,
 * runs initdb + pg_ctl as the `postgres` user in a fresh temp directory on a free port.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { aptInstall } from './apt.js';
import {
  asUser,
  freePorts,
  guardServer,
  makeTempDir,
  removeDir,
  run,
  tailFile,
  waitForPidGone,
  waitUntilReady,
} from './process.js';
import type { StartOptions, TestServer } from './server.js';

const LIB = '/usr/lib/postgresql';

/** The bin directory of the newest PostgreSQL server installed under /usr/lib/postgresql. */
function findBinDir(): string | undefined {
  if (!existsSync(LIB)) return undefined;
  const versions = readdirSync(LIB)
    .filter((v) => existsSync(join(LIB, v, 'bin', 'initdb')) && existsSync(join(LIB, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(LIB, versions[0], 'bin');
}

async function probe(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Starts PostgreSQL; the URL is `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth). */
export async function start(opts: StartOptions = {}): Promise<TestServer> {
  let bin = findBinDir();
  if (!bin) {
    await aptInstall(['postgresql']);
    bin = findBinDir();
    if (!bin) throw new Error(`apt-get installed postgresql but no server binaries are under ${LIB}`);
  }
  const dir = makeTempDir('postgres', 'postgres');
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  let release: (() => void) | undefined;
  try {
    const initdbArgs = ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'];
    await run({ ...asUser('postgres', join(bin, 'initdb'), initdbArgs), cwd: dir });
    const [port] = await freePorts(1);
    // Durability is not under test: skipping fsync keeps DDL-heavy test files fast.
    const serverOpts = [
      `-p ${port} -k '${dir}' -c listen_addresses=127.0.0.1 -c max_connections=200`,
      '-c fsync=off -c synchronous_commit=off -c full_page_writes=off',
    ].join(' ');
    const pgCtl = join(bin, 'pg_ctl');
    const startCmd = asUser('postgres', pgCtl, [
      '-D',
      data,
      '-o',
      serverOpts,
      '-l',
      log,
      '-w',
      '-t',
      '60',
      'start',
    ]);
    await run({ ...startCmd, cwd: dir, timeoutMs: 90_000 }).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${log} (tail) ---\n${tailFile(log)}`);
    });
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    // SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its backends with it.
    release = guardServer(pid, 'SIGQUIT', dir);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await waitUntilReady({
      name: 'PostgreSQL',
      probe: () => probe(url),
      timeoutMs: opts.timeoutMs ?? 60_000,
      logs: [log],
    });
    let stopped: Promise<void> | undefined;
    const stop = async () => {
      stopped ??= (async () => {
        await run({
          ...asUser('postgres', join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', 'stop']),
          cwd: dir,
        }).catch(() => undefined);
        await waitForPidGone(pid, 10_000);
        release?.();
        removeDir(dir);
      })();
      return stopped;
    };
    return { url, stop };
  } catch (err) {
    // initdb or start failed: stop whatever came up (an immediate shutdown is enough).
    await run({
      ...asUser('postgres', join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']),
      cwd: dir,
    }).catch(() => undefined);
    release?.();
    removeDir(dir);
    throw err;
  }
}

/**
 * Creates (or recreates, empty) database `name` on the server at `url` and returns a URL
 * for it, so that each test file works in its own database.
 */
export async function createDatabase(url: string, name: string): Promise<string> {
  const ident = `"${name.replaceAll('"', '""')}"`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${ident} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${ident}`);
  } finally {
    await client.end();
  }
  const out = new URL(url);
  out.pathname = `/${encodeURIComponent(name)}`;
  return out.toString();
}
