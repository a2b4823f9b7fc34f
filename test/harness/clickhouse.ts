/**
 * A throwaway ClickHouse server for tests: installs `clickhouse-server` when missing and
 * runs it in a fresh temp directory with a generated config on free ports. Debian 12
 * ships ClickHouse 18.16, whose config root element is still `<yandex>`.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { aptInstall } from './apt.js';
import { freePorts, guardServer, makeTempDir, removeDir, waitForExit, waitUntilReady } from './process.js';
import type { StartOptions, TestServer } from './server.js';

const USERS_XML = '/etc/clickhouse-server/users.xml';

function findServer(): string | undefined {
  return ['/usr/sbin/clickhouse-server', '/usr/bin/clickhouse-server'].find((p) => existsSync(p));
}

function configXml(dir: string, httpPort: number, tcpPort: number): string {
  const d = (sub: string) => `${join(dir, sub)}/`;
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>${join(dir, 'server.log')}</log>
    <errorlog>${join(dir, 'error.log')}</errorlog>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${d('data')}</path>
  <tmp_path>${d('tmp')}</tmp_path>
  <user_files_path>${d('user_files')}</user_files_path>
  <format_schema_path>${d('format_schemas')}</format_schema_path>
  <users_config>${USERS_XML}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <max_concurrent_queries>200</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
`;
}

async function probe(url: string): Promise<void> {
  const ping = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2_000) });
  if (!ping.ok) throw new Error(`GET /ping answered ${ping.status}`);
  const client = createClient({ url, request_timeout: 5_000 });
  try {
    const rs = await client.query({ query: 'SELECT 1 AS ok', format: 'JSONEachRow' });
    await rs.json();
  } finally {
    await client.close();
  }
}

/** Starts ClickHouse; the URL is its HTTP interface `http://127.0.0.1:PORT` (user default, no password). */
export async function start(opts: StartOptions = {}): Promise<TestServer> {
  let server = findServer();
  if (!server) {
    await aptInstall(['clickhouse-server']);
    server = findServer();
    if (!server)
      throw new Error('apt-get installed clickhouse-server but /usr/sbin/clickhouse-server is missing');
  }
  if (!existsSync(USERS_XML))
    throw new Error(`ClickHouse's ${USERS_XML} is missing (reinstall clickhouse-server)`);
  const dir = makeTempDir('clickhouse');
  for (const sub of ['data', 'tmp', 'user_files', 'format_schemas']) mkdirSync(join(dir, sub));
  const [httpPort, tcpPort] = await freePorts(2);
  const config = join(dir, 'config.xml');
  writeFileSync(config, configXml(dir, httpPort!, tcpPort!));
  const stdoutLog = join(dir, 'stdout.log');
  const logFd = openSync(stdoutLog, 'a');
  const child = spawn(server, [`--config-file=${config}`], { cwd: dir, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  // A spawn failure surfaces as the missing pid below; without a listener it would crash the run.
  child.on('error', () => undefined);
  const pid = child.pid;
  if (pid === undefined) {
    removeDir(dir);
    throw new Error(`cannot spawn ${server}`);
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
  const url = `http://127.0.0.1:${httpPort}`;
  try {
    await waitUntilReady({
      name: 'ClickHouse',
      probe: () => probe(url),
      timeoutMs: opts.timeoutMs ?? 60_000,
      logs: [join(dir, 'error.log'), stdoutLog],
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
 * for it (`@clickhouse/client` reads the database from the URL path).
 */
export async function createDatabase(url: string, name: string): Promise<string> {
  const ident = `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
  const client = createClient({ url });
  try {
    await client.command({ query: `DROP DATABASE IF EXISTS ${ident}` });
    await client.command({ query: `CREATE DATABASE ${ident}` });
  } finally {
    await client.close();
  }
  const out = new URL(url);
  out.pathname = `/${encodeURIComponent(name)}`;
  return out.toString();
}
