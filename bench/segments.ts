/**
 * Segment integrations: 100,000 profile additions into MariaDB with `batch.size: 500`, through
 * backflow's durable queue (enqueue into a SQLite runtime store, then flush: one rendered
 * seed-style `INSERT … ON DUPLICATE KEY UPDATE` per batch), against plain mysql2 multi-row inserts
 * of the same rows, 500 per statement, in the same run. Each side runs three times into an emptied
 * table; the fastest run counts. Both tables must end up with every profile. Reported: queue then
 * flush (as `segments add` + `segments flush`), and the flush alone.
 *
 * BENCH_MARIADB_URL=mysql://root@host:port/db uses a running server; otherwise one is started with
 * the test harness (Debian's mariadb-server). BENCH_SEGMENT_PROFILES sets the count.
 * BENCH_CPU_PROF=DIR writes a V8 CPU profile of each backflow run (queue, then flush; this bench
 * runs in-process) to DIR/segments-RUN-PHASE.cpuprofile; the times of a profiled run are not figures.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import { readConfig } from '../engine/config/index.js';
import { applyPlan } from '../engine/plan/apply.js';
import { plan } from '../engine/plan/plan.js';
import { enqueueProfiles, flushDue } from '../engine/segments/index.js';
import { LocalStateBackend } from '../engine/state/local.js';
import type { StateDocument } from '../engine/state/types.js';
import { openStore } from '../engine/store/index.js';

const SIZE = 500;
/** Profiles per enqueue call, as `segments add --file` does. */
const CHUNK = 10_000;
const TABLE = (name: string) => `CREATE TABLE ${name} (
  segId INT NOT NULL, clientId VARCHAR(255) NOT NULL, updated DATETIME NULL, PRIMARY KEY (segId, clientId))`;

const CONFIG = `
connectors:
  crm: { type: mysql, url: "\${env:BENCH_SEGMENTS_DB}" }
segments:
  vip: { id: 1001, name: VIP customers, key: CustomID, members: managed }
segment_integrations:
  export_vips:
    connector: crm
    segments: [vip]
    batch: { size: ${SIZE}, timeout: 10s }
    queries:
      add: |
        INSERT INTO mysegment_backflow (segId, clientId, updated)
        VALUES
        {for $index, $lead = $batch}
        ({segment_id}, "{$lead.CustomID}", NOW()){autocomma}
        {end}
        ON DUPLICATE KEY UPDATE
        updated = NOW();
      remove: |
        DELETE FROM mysegment_backflow WHERE segId = {segment_id} AND clientId IN ({batch_in "CustomID"})
`;

interface Side {
  readonly ms: number;
  readonly enqueue_ms?: number;
  readonly flush_ms?: number;
}

async function server(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.BENCH_MARIADB_URL)
    return { url: process.env.BENCH_MARIADB_URL, stop: async () => undefined };
  const { start } = await import('../test/harness/mariadb.js');
  const s = await start();
  return { url: s.url, stop: () => s.stop() };
}

/** mysql2 on its own: one multi-row INSERT … ON DUPLICATE KEY UPDATE per 500 profiles. */
async function raw(conn: mysql.Connection, ids: readonly string[]): Promise<Side> {
  await conn.query('TRUNCATE TABLE mysegment_raw');
  const t0 = performance.now();
  for (let i = 0; i < ids.length; i += SIZE) {
    // The same rows as the seed's add query writes: segment id, client id, and the time.
    const now = new Date().toISOString().slice(0, 19).replace('T', ' ');
    const rows = ids.slice(i, i + SIZE).map((id) => [1001, id, now]);
    await conn.query(
      'INSERT INTO mysegment_raw (segId, clientId, updated) VALUES ? ON DUPLICATE KEY UPDATE updated = NOW()',
      [rows],
    );
  }
  return { ms: performance.now() - t0 };
}

interface Profiler {
  start(): Promise<void>;
  /** Stops and writes DIR/NAME.cpuprofile. */
  stop(name: string): Promise<void>;
  close(): void;
}

/** BENCH_CPU_PROF: CPU profiles of what runs between `start` and `stop`. */
async function profiler(): Promise<Profiler | undefined> {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return undefined;
  await mkdir(dir, { recursive: true });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  return {
    start: async () => {
      await session.post('Profiler.start');
    },
    stop: async (name) => {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    },
    close: () => session.disconnect(),
  };
}

/** backflow: profiles into the durable queue (a SQLite runtime store), then one flush, as `segments add --file` and `segments flush` do. */
async function backflow(
  conn: mysql.Connection,
  url: string,
  ids: readonly string[],
  run: number,
  prof: Profiler | undefined,
): Promise<Side> {
  await conn.query('TRUNCATE TABLE mysegment_backflow');
  const dir = await mkdtemp(join(tmpdir(), 'backflow-bench-segments-'));
  process.env.BENCH_SEGMENTS_DB = url;
  try {
    await writeFile(join(dir, 'backflow.yaml'), CONFIG);
    const r = await readConfig(dir);
    if (!r.config) throw new Error(`bench config: ${JSON.stringify(r.diagnostics)}`);
    const backend = new LocalStateBackend(join(dir, '.backflow/state.json'));
    const state: StateDocument = (await applyPlan({ plan: plan({ config: r.config, state: null }), backend }))
      .state;
    const store = await openStore({ url: 'sqlite:.backflow/store.db', configDir: dir });
    try {
      await prof?.start();
      const t0 = performance.now();
      for (let i = 0; i < ids.length; i += CHUNK) {
        const profiles = ids.slice(i, i + CHUNK).map((CustomID) => ({ CustomID }));
        await enqueueProfiles({ store, state, segment: 'vip', kind: 'add', profiles });
      }
      const t1 = performance.now();
      await prof?.stop(`segments-${run}-queue`);
      await prof?.start();
      const t2 = performance.now();
      const report = await flushDue({ store, state, configDir: dir });
      const t3 = performance.now();
      await prof?.stop(`segments-${run}-flush`);
      if (report.failed || report.profiles !== ids.length)
        throw new Error(
          `flush sent ${report.profiles} profiles, ${report.failed} failed: ${report.batches.find((b) => b.error)?.error}`,
        );
      // Queue then flush, without the profiler's pause between them.
      return { ms: t1 - t0 + (t3 - t2), enqueue_ms: t1 - t0, flush_ms: t3 - t2 };
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const best = (runs: readonly Side[]) => runs.reduce((a, b) => (b.ms < a.ms ? b : a));
const round = (n: number | undefined) => Math.round(n ?? 0);

export async function run(): Promise<Record<string, unknown>> {
  const profiles = Number(process.env.BENCH_SEGMENT_PROFILES ?? 100_000);
  const ids = Array.from({ length: profiles }, (_, i) => `customer-${String(i).padStart(7, '0')}`);
  const srv = await server();
  const db = `backflow_bench_segments_${process.pid}`;
  const admin = await mysql.createConnection({ uri: srv.url });
  try {
    await admin.query(`CREATE DATABASE ${db} CHARACTER SET utf8mb4`);
    const u = new URL(srv.url);
    u.pathname = `/${db}`;
    const url = u.toString();
    const conn = await mysql.createConnection({ uri: url, charset: 'utf8mb4' });
    try {
      await conn.query(TABLE('mysegment_raw'));
      await conn.query(TABLE('mysegment_backflow'));
      await raw(conn, ids.slice(0, SIZE * 4)); // warm the server and the connection
      const raws: Side[] = [];
      const flows: Side[] = [];
      const prof = await profiler();
      for (let i = 0; i < 3; i++) {
        raws.push(await raw(conn, ids));
        flows.push(await backflow(conn, url, ids, i + 1, prof));
      }
      prof?.close();
      for (const t of ['mysegment_raw', 'mysegment_backflow']) {
        const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT count(*) AS n FROM ${t}`);
        if (Number(rows[0]!.n) !== profiles)
          throw new Error(`${t} holds ${rows[0]!.n} rows, not ${profiles}`);
      }
      const r = best(raws);
      const b = best(flows);
      const result = {
        profiles,
        batch_size: SIZE,
        backflow_ms: round(b.ms),
        backflow_enqueue_ms: round(b.enqueue_ms),
        backflow_flush_ms: round(b.flush_ms),
        mysql2_ms: round(r.ms),
        ratio: +(b.ms / r.ms).toFixed(2),
        flush_only_ratio: +((b.flush_ms ?? 0) / r.ms).toFixed(2),
        target_ratio: 1.5,
        runs: {
          backflow_ms: flows.map((f) => round(f.ms)),
          mysql2_ms: raws.map((x) => round(x.ms)),
        },
      };
      console.log(
        `segments: ${profiles.toLocaleString('en')} profile additions into MariaDB, batch.size ${SIZE} — backflow ${result.backflow_ms} ms ` +
          `(enqueue ${result.backflow_enqueue_ms} ms + flush ${result.backflow_flush_ms} ms) vs mysql2 multi-row inserts ${result.mysql2_ms} ms: ` +
          `${result.ratio}× (flush alone ${result.flush_only_ratio}×; target ≤ ${result.target_ratio}× ${result.ratio <= result.target_ratio ? '✔' : '✘'})`,
      );
      return result;
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
      await conn.end();
    }
  } finally {
    await admin.end();
    await srv.stop();
  }
}
