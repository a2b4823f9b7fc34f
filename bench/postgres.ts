/**
 * Postgres → Postgres: backflow's sync against psql doing the same work with COPY, on the same data.
 *
 *  (a) initial sync, upsert of every row:   backflow  vs  psql COPY (model) TO STDOUT | psql COPY into a
 *      temp table + INSERT … ON CONFLICT DO UPDATE (one transaction)
 *  (b) incremental sync, 1% of rows changed: backflow  vs  psql COPY (model) TO STDOUT > /dev/null
 *      (reading the model is the floor of any incremental sync that has no change tracking)
 *  (c) backflow's peak RSS, read in the child process that runs each sync (process.resourceUsage).
 *
 * Each backflow sync runs in a child process (this module, `--backflow-bench-child`), so its wall time
 * includes start-up like psql's does and its RSS is its own. The runtime store is a temporary SQLite
 * file, as a user's default. Both destinations are checked to hold identical rows afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ResourceState } from '../engine/plan/types.js';
import { STATE_VERSION, type StateDocument } from '../engine/state/types.js';
import { profileArgs } from './child.js';

export interface PostgresBenchRequest {
  /** A PostgreSQL server URL whose user may create databases; the bench works in a database of its own. */
  readonly pgUrl: string;
  /** Rows in the model (default 1,000,000). */
  readonly rows?: number;
  /** The mapping's batch_size (default 5000, as the SQLite bench). */
  readonly batchSize?: number;
  /** psql binary (default /usr/bin/psql). */
  readonly psql?: string;
  readonly log?: (line: string) => void;
}

export interface PostgresBenchResult {
  readonly rows: number;
  readonly batch_size: number;
  readonly initial: {
    readonly backflow_ms: number;
    readonly sync_ms: number;
    readonly psql_ms: number;
    readonly ratio: number;
  };
  readonly incremental: {
    readonly changed: number;
    readonly backflow_ms: number;
    readonly sync_ms: number;
    readonly psql_ms: number;
    readonly ratio: number;
  };
  readonly peak_rss_mb: { readonly initial: number; readonly incremental: number };
  /** The backflow and psql destination tables hold the same rows, byte for byte. */
  readonly identical: boolean;
  readonly targets: { readonly initial_ratio: 2; readonly incremental_ratio: 2.5; readonly rss_mb: 300 };
}

const COLUMNS = ['id', 'email', 'name', 'plan', 'score', 'updated_at', 'traits'] as const;
const MODEL_SQL = `SELECT ${COLUMNS.join(', ')} FROM users`;
const TABLE_DDL = `(
  id bigint PRIMARY KEY, email text NOT NULL, name text, plan text, score numeric(12,2),
  updated_at timestamptz, traits jsonb)`;

/** Runs the whole benchmark and drops its database afterwards. */
export async function benchPostgres(req: PostgresBenchRequest): Promise<PostgresBenchResult> {
  const rows = req.rows ?? 1_000_000;
  const batchSize = req.batchSize ?? 5000;
  const psql = req.psql ?? '/usr/bin/psql';
  const log = req.log ?? (() => undefined);
  const dbName = `backflow_bench_${process.pid}_${Date.now().toString(36)}`;
  const dbUrl = withDatabase(req.pgUrl, dbName);
  const admin = new pg.Client({ connectionString: req.pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const db = new pg.Client({ connectionString: dbUrl });
  const dir = await mkdtemp(join(tmpdir(), 'backflow-bench-pg-'));
  try {
    await db.connect();
    log(`postgres bench: generating ${rows.toLocaleString('en')} rows`);
    await db.query(`CREATE TABLE users ${TABLE_DDL}`);
    await db.query(
      `INSERT INTO users
       SELECT g, 'user' || g || '@example.com', 'User ' || g, (ARRAY['free', 'pro', 'team'])[1 + g % 3],
              (g % 100000) / 100.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
              jsonb_build_object('color', (ARRAY['red', 'green', 'blue'])[1 + g % 3], 'visits', g % 1000,
                                 'tags', jsonb_build_array('a', 'b'), 'address', jsonb_build_object('city', 'City ' || g % 97))
         FROM generate_series(1, $1::bigint) AS g`,
      [rows],
    );
    await db.query(`CREATE TABLE dst_backflow ${TABLE_DDL}`);
    await db.query(`CREATE TABLE dst_psql ${TABLE_DDL}`);
    await db.query('VACUUM ANALYZE users');

    const state = benchState(dbUrl, batchSize);
    const psqlInitial = () =>
      shell(
        `set -o pipefail; ${psql} -X -q -v ON_ERROR_STOP=1 -d '${dbUrl}' -c "COPY (${MODEL_SQL}) TO STDOUT" | ` +
          `${psql} -X -q -v ON_ERROR_STOP=1 -1 -d '${dbUrl}' -c "CREATE TEMP TABLE load (LIKE dst_psql) ON COMMIT DROP" ` +
          `-c "COPY load FROM STDIN" -c "INSERT INTO dst_psql SELECT * FROM load ON CONFLICT (id) DO UPDATE SET ${COLUMNS.filter(
            (c) => c !== 'id',
          )
            .map((c) => `${c} = EXCLUDED.${c}`)
            .join(', ')}"`,
      );

    log('postgres bench: initial sync (backflow)');
    const bfInitial = await childSync({ state, configDir: dir });
    if (bfInitial.status !== 'success' || bfInitial.succeeded !== rows)
      throw new Error(`backflow's initial sync did not load every row: ${JSON.stringify(bfInitial)}`);
    log('postgres bench: initial sync (psql)');
    const psqlInitialMs = await psqlInitial();
    const identical = await sameRows(db);

    const changed = Math.floor(rows / 100);
    await db.query(
      `UPDATE users SET plan = 'enterprise', traits = traits || '{"visits": -1}'::jsonb WHERE id % 100 = 0`,
    );
    await db.query('VACUUM ANALYZE users');
    log('postgres bench: incremental sync (backflow)');
    const bfIncremental = await childSync({ state, configDir: dir });
    if (bfIncremental.status !== 'success' || bfIncremental.succeeded !== changed)
      throw new Error(
        `backflow's incremental sync did not load exactly the changed rows: ${JSON.stringify(bfIncremental)}`,
      );
    log('postgres bench: incremental read (psql)');
    const psqlIncrementalMs = await shell(
      `${psql} -X -q -v ON_ERROR_STOP=1 -d '${dbUrl}' -c "COPY (${MODEL_SQL}) TO STDOUT" > /dev/null`,
    );

    const round = (n: number) => Math.round(n);
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    return {
      rows,
      batch_size: batchSize,
      initial: {
        backflow_ms: round(bfInitial.wallMs),
        sync_ms: round(bfInitial.syncMs),
        psql_ms: round(psqlInitialMs),
        ratio: ratio(bfInitial.wallMs, psqlInitialMs),
      },
      incremental: {
        changed,
        backflow_ms: round(bfIncremental.wallMs),
        sync_ms: round(bfIncremental.syncMs),
        psql_ms: round(psqlIncrementalMs),
        ratio: ratio(bfIncremental.wallMs, psqlIncrementalMs),
      },
      peak_rss_mb: {
        initial: round(bfInitial.maxRssKb / 1024),
        incremental: round(bfIncremental.maxRssKb / 1024),
      },
      identical,
      targets: { initial_ratio: 2, incremental_ratio: 2.5, rss_mb: 300 },
    };
  } finally {
    await db.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The applied state of a one-mapping project: warehouse users → crm table, upsert on id. */
function benchState(url: string, batchSize: number): StateDocument {
  const resource = (
    kind: ResourceState['kind'],
    name: string,
    body: Record<string, unknown>,
  ): ResourceState => ({
    address: `${kind}.${name}`,
    kind,
    name,
    body,
  });
  return {
    version: STATE_VERSION,
    serial: 1,
    lineage: 'bench',
    resources: [
      resource('source', 'warehouse', { type: 'postgres', url }),
      resource('model', 'users', { source: 'warehouse', sql: MODEL_SQL, primary_key: 'id' }),
      resource('destination', 'crm', { type: 'postgres', url }),
      resource('mapping', 'users_to_crm', {
        model: 'users',
        destination: 'crm',
        action: 'upsert',
        table: 'dst_backflow',
        key: 'id',
        fields: Object.fromEntries(COLUMNS.map((c) => [c, c])),
        enabled: true,
        schedule: 'manual',
        batch_size: batchSize,
        sync_on: ['added', 'updated'],
        retry: { max_age: '14d' },
      }),
    ],
    pending_effects: [],
  };
}

interface ChildRequest {
  readonly state: StateDocument;
  readonly configDir: string;
}

interface ChildResult {
  readonly status: string;
  readonly succeeded: number;
  readonly syncMs: number;
  readonly maxRssKb: number;
  readonly wallMs: number;
}

/** Runs one sync in a child process (this module in child mode) and returns its figures. */
async function childSync(req: ChildRequest): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  // Built (dist/bench/postgres.js): plain node. From source (.ts), through vite-node, whose own
  // memory then counts in the RSS figure.
  const [cmd, args] = self.endsWith('.ts')
    ? [join(process.cwd(), 'node_modules', '.bin', 'vite-node'), [self, '--', CHILD_FLAG]]
    : [process.execPath, [...profileArgs(), self, CHILD_FLAG]];
  const started = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`bench child exited with ${code}`)),
    );
    child.stdin.end(JSON.stringify(req));
  });
  const wallMs = performance.now() - started;
  const line = out.trim().split('\n').at(-1) ?? '';
  return { ...(JSON.parse(line) as Omit<ChildResult, 'wallMs'>), wallMs };
}

const CHILD_FLAG = '--backflow-bench-child';

/** Child mode: read the request from stdin, run the sync, print one JSON line. */
async function child(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const req = JSON.parse(input) as ChildRequest;
  const { openStore } = await import('../engine/store/index.js');
  const { runSync } = await import('../engine/sync/run.js');
  const store = await openStore({ url: 'sqlite:store.db', configDir: req.configDir });
  const t0 = performance.now();
  try {
    const run = await runSync({
      mapping: 'users_to_crm',
      state: req.state,
      configDir: req.configDir,
      store,
      trigger: 'manual',
    });
    const syncMs = performance.now() - t0;
    if (run.status !== 'success') process.stderr.write(`${JSON.stringify(run.errors, null, 2)}\n`);
    const result = {
      status: run.status,
      succeeded: run.load.succeeded,
      syncMs,
      maxRssKb: process.resourceUsage().maxRSS,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await store.close();
  }
}

/** Runs a bash command line; resolves with its wall time in ms. */
function shell(command: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', command], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0
        ? resolve(performance.now() - started)
        : reject(new Error(`psql pipeline exited with ${code}`)),
    );
  });
}

/** Both destination tables hold the same rows (compared as text, in key order). */
async function sameRows(db: pg.Client): Promise<boolean> {
  const digest = async (table: string) =>
    (
      await db.query<{ d: string }>(
        `SELECT md5(string_agg(t::text, E'\\n' ORDER BY id)) AS d FROM ${table} AS t`,
      )
    ).rows[0]?.d;
  const [a, b] = await Promise.all([digest('dst_backflow'), digest('dst_psql')]);
  return a !== undefined && a === b;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

if (process.argv.includes(CHILD_FLAG)) {
  child().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
