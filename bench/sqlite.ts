/**
 * SQLite → SQLite: a 7-column model (one JSON object column) synced with `upsert`, initial and with
 * 1% of rows changed, against SQLite doing the same copy itself (ATTACH + INSERT … SELECT … ON
 * CONFLICT) in the same run; peak RSS at 1M rows and at 3M rows (streaming: it must stay flat).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runChild } from './child.js';

const CONFIG = `
sources:
  wh: { type: sqlite, path: wh.db }
models:
  users:
    source: wh
    primary_key: id
    sql: select id, email, name, plan, traits, score, updated_at from users
destinations:
  dest: { type: sqlite, path: dest.db }
mappings:
  users_copy:
    model: users
    destination: dest
    action: upsert
    table: users_copy
    key: id
    batch_size: 5000
    fields: { id: id, email: email, name: name, plan: plan, traits: { column: traits, type: object }, score: score, updated_at: updated_at }
`;

const DEST_DDL =
  'create table users_copy (id text primary key, email text, name text, plan text, traits text, score real, updated_at text)';

async function prepare(rows: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-bench-sqlite-'));
  await writeFile(join(dir, 'backflow.yaml'), CONFIG);
  const wh = new Database(join(dir, 'wh.db'));
  wh.pragma('journal_mode = WAL');
  wh.exec(`create table users (id integer primary key, email text, name text, plan text, traits text, score real, updated_at text);
    with recursive n(i) as (select 1 union all select i + 1 from n where i < ${rows})
    insert into users select i, 'user' || i || '@example.com', 'User ' || i, case i % 3 when 0 then 'free' when 1 then 'pro' else 'team' end,
      json_object('color', case i % 4 when 0 then 'red' when 1 then 'green' when 2 then 'blue' else 'pink' end, 'company', 'Co ' || (i % 1000), 'visits', i % 97),
      (i % 1000) / 10.0, '2026-11-01T00:00:00Z' from n;`);
  wh.close();
  const dest = new Database(join(dir, 'dest.db'));
  dest.exec(DEST_DDL);
  dest.close();
  return dir;
}

function rawCopy(dir: string): number {
  const db = new Database(join(dir, 'raw.db'));
  db.exec(DEST_DDL);
  db.exec(`attach '${join(dir, 'wh.db')}' as wh`);
  const t0 = performance.now();
  db.exec(`insert into users_copy select cast(id as text), email, name, plan, traits, score, updated_at from wh.users where true
           on conflict (id) do update set email = excluded.email, name = excluded.name, plan = excluded.plan,
           traits = excluded.traits, score = excluded.score, updated_at = excluded.updated_at`);
  const ms = performance.now() - t0;
  db.close();
  return ms;
}

function rawScan(dir: string): number {
  const db = new Database(join(dir, 'wh.db'), { readonly: true });
  const t0 = performance.now();
  let n = 0;
  for (const _row of db
    .prepare('select id, email, name, plan, traits, score, updated_at from users')
    .iterate())
    n++;
  const ms = performance.now() - t0;
  db.close();
  return n >= 0 ? ms : ms;
}

export async function run(): Promise<Record<string, unknown>> {
  const rows = Number(process.env.BENCH_ROWS ?? 1_000_000);
  const dir = await prepare(rows);
  try {
    const initial = await runChild('./sqlite-child.js', [dir, 'users_copy']);
    if (initial.run.load.succeeded !== rows)
      throw new Error(`initial sync loaded ${initial.run.load.succeeded} of ${rows}`);
    const raw = rawCopy(dir);
    const wh = new Database(join(dir, 'wh.db'));
    wh.exec("update users set plan = 'enterprise' where id % 100 = 0");
    wh.close();
    const incremental = await runChild('./sqlite-child.js', [dir, 'users_copy']);
    if (incremental.run.extract.updated !== Math.floor(rows / 100))
      throw new Error(`incremental saw ${incremental.run.extract.updated} updates`);
    const scan = rawScan(dir);
    const result: Record<string, unknown> = {
      rows,
      initial_ms: Math.round(initial.ms),
      initial_rows_per_s: Math.round(rows / (initial.ms / 1000)),
      initial_vs_sqlite_insert_select: +(initial.ms / raw).toFixed(2),
      initial_peak_rss_mb: Math.round(initial.maxRssMb),
      incremental_ms: Math.round(incremental.ms),
      incremental_rows_per_s: Math.round(rows / (incremental.ms / 1000)),
      incremental_vs_sqlite_scan: +(incremental.ms / scan).toFixed(2),
      incremental_peak_rss_mb: Math.round(incremental.maxRssMb),
    };
    console.log(
      `sqlite: ${rows.toLocaleString('en-US')} rows — initial ${result.initial_ms} ms (${result.initial_rows_per_s} rows/s, ${result.initial_vs_sqlite_insert_select}× SQLite's own INSERT…SELECT), peak RSS ${result.initial_peak_rss_mb} MB; ` +
        `1% changed ${result.incremental_ms} ms (${result.incremental_vs_sqlite_scan}× a plain scan), peak RSS ${result.incremental_peak_rss_mb} MB`,
    );
    if (process.env.BENCH_RSS_SCALE !== '0') {
      const bigRows = rows * 3;
      const big = await prepare(bigRows);
      try {
        const r = await runChild('./sqlite-child.js', [big, 'users_copy']);
        result.rss_3x_rows = bigRows;
        result.rss_3x_peak_mb = Math.round(r.maxRssMb);
        result.rss_growth_pct = Math.round(((r.maxRssMb - initial.maxRssMb) / initial.maxRssMb) * 100);
        console.log(
          `sqlite: ${bigRows.toLocaleString('en-US')} rows — peak RSS ${result.rss_3x_peak_mb} MB (${result.rss_growth_pct}% more than at ${rows.toLocaleString('en-US')}; target < 20%)`,
        );
      } finally {
        await rm(big, { recursive: true, force: true });
      }
    }
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
