/**
 * A throwaway MariaDB server for tests: installs `mariadb-server` when missing, runs
 * mariadb-install-db and mariadbd (which drops to user `mysql`) in a fresh temp directory
 * on a free port. `--no-defaults` keeps /etc/mysql out of it, so every machine gets the
 * same server settings.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { aptInstall } from './apt.js';
import {
  freePorts,
  guardServer,
  isRoot,
  makeTempDir,
  removeDir,
  run,
  waitForExit,
  waitUntilReady,
} from './process.js';
import type { StartOptions, TestServer } from './server.js';

interface Binaries {
  readonly server: string;
  readonly installDb: string;
}

function findBinaries(): Binaries | undefined {
  const server = ['/usr/sbin/mariadbd', '/usr/bin/mariadbd'].find((p) => existsSync(p));
  const installDb = ['/usr/bin/mariadb-install-db', '/usr/sbin/mariadb-install-db'].find((p) =>
    existsSync(p),
  );
  return server && installDb ? { server, installDb } : undefined;
}

async function probe(url: string): Promise<void> {
  const conn = await mysql.createConnection({ uri: url, connectTimeout: 2_000 });
  try {
    await conn.query('SELECT 1');
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** Starts MariaDB; the URL is `mysql://root@127.0.0.1:PORT/mysql` (root, no password). */
export async function start(opts: StartOptions = {}): Promise<TestServer> {
  let bin = findBinaries();
  if (!bin) {
    await aptInstall(['mariadb-server']);
    bin = findBinaries();
    if (!bin)
      throw new Error('apt-get installed mariadb-server but mariadbd / mariadb-install-db are missing');
  }
  const user = isRoot() ? ['--user=mysql'] : [];
  const dir = makeTempDir('mariadb', 'mysql');
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  try {
    await run({
      cmd: bin.installDb,
      args: [
        '--no-defaults',
        `--datadir=${data}`,
        ...user,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
        '--innodb-flush-log-at-trx-commit=0',
      ],
    });
  } catch (err) {
    removeDir(dir);
    throw err;
  }
  const [port] = await freePorts(1);
  const logFd = openSync(log, 'a');
  const child = spawn(
    bin.server,
    [
      '--no-defaults',
      `--datadir=${data}`,
      ...user,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${join(dir, 'sock')}`,
      `--pid-file=${join(dir, 'pid')}`,
      `--log-error=${log}`,
      '--skip-name-resolve',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
      '--max-connections=300',
      // Durability is not under test: fewer fsyncs keep DDL-heavy test files fast.
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-doublewrite=0',
      '--innodb-buffer-pool-size=64M',
      // Container seccomp profiles may refuse io_uring/libaio; simulated AIO works everywhere.
      '--innodb-use-native-aio=0',
      '--skip-log-bin',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  // A spawn failure surfaces as the missing pid below; without a listener it would crash the run.
  child.on('error', () => undefined);
  const pid = child.pid;
  if (pid === undefined) {
    removeDir(dir);
    throw new Error(`cannot spawn ${bin.server}`);
  }
  const release = guardServer(pid, 'SIGKILL', dir);
  let stopped: Promise<void> | undefined;
  const stop = async () => {
    stopped ??= (async () => {
      child.kill('SIGTERM');
      await waitForExit(child, 30_000);
      release();
      removeDir(dir);
    })();
    return stopped;
  };
  const url = `mysql://root@127.0.0.1:${port}/mysql`;
  try {
    await waitUntilReady({
      name: 'MariaDB',
      probe: () => probe(url),
      timeoutMs: opts.timeoutMs ?? 60_000,
      logs: [log],
      child,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}

/**
 * Creates (or recreates, empty) database `name` on the server at `url` and returns a URL
 * for it, so that each test file works in its own database.
 */
export async function createDatabase(url: string, name: string): Promise<string> {
  const ident = `\`${name.replaceAll('`', '``')}\``;
  const conn = await mysql.createConnection({ uri: url });
  try {
    await conn.query(`DROP DATABASE IF EXISTS ${ident}`);
    await conn.query(`CREATE DATABASE ${ident} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  } finally {
    await conn.end();
  }
  const out = new URL(url);
  out.pathname = `/${encodeURIComponent(name)}`;
  return out.toString();
}
