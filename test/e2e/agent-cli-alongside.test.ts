// The CLI reads the SQLite store (WAL) while an agent writes to it: `syncs`, `syncs show` and
// `segments stats` during a sync and segment flushes, each answering at once and consistently.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookReceiver } from '../harness/webhook-receiver.js';
import { AgentProcess } from './agent-process.js';
import { backflow } from './cli.js';

let dir: string;
let receiver: WebhookReceiver;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'backflow-alongside-'));
  receiver = await WebhookReceiver.start({ delayMs: 150 });
  const wh = new Database(join(dir, 'wh.db'));
  wh.exec('create table t (id integer primary key, v text)');
  const insert = wh.prepare('insert into t values (?, ?)');
  for (let i = 1; i <= 600; i++) insert.run(i, `v${i}`);
  wh.close();
  const seg = new Database(join(dir, 'seg.db'));
  seg.exec('create table members (segment_id integer, id text)');
  seg.close();
  await writeFile(
    join(dir, 'main.yaml'),
    `
settings:
  agent: { listen: "127.0.0.1:0" }
sources:
  wh: { type: sqlite, path: wh.db }
models:
  rows: { source: wh, primary_key: id, sql: "select id, v from t" }
destinations:
  hook: { type: webhook, url: "${receiver.url}" }
mappings:
  rows_to_hook: { model: rows, destination: hook, action: post, batch_size: 20, schedule: { every: 1s }, fields: { id: id, v: v } }
connectors:
  seg_db: { type: sqlite, path: seg.db }
segments:
  vip: { id: 42, name: VIP, key: CustomID, members: managed, fields: [CustomID] }
segment_integrations:
  export_vips:
    connector: seg_db
    segments: [vip]
    batch: { size: 5, timeout: 1s }
    queries:
      add: INSERT INTO members (segment_id, id) VALUES {for $index, $lead = $batch}({segment_id}, '{$lead.CustomID}'){autocomma}{end}
      remove: DELETE FROM members WHERE segment_id = {segment_id} AND id IN ({batch_in "CustomID"})
`,
  );
  const apply = await backflow(['--dir', dir, 'apply', '--auto-approve', '--no-refresh']);
  expect(apply.code, apply.stderr).toBe(0);
});

afterAll(async () => {
  await receiver?.close();
});

describe('the CLI alongside a running agent', () => {
  it('reads runs and segment statistics while the agent writes', { timeout: 120_000 }, async () => {
    const agent = new AgentProcess({ dir });
    const base = await agent.base();
    const started = await agent.waitFor((l) => l.event === 'run_started');
    let profiles = 0;
    for (let round = 0; round < 3; round++) {
      const feed = (async () => {
        for (let i = 0; i < 5; i++) {
          const body = Array.from({ length: 4 }, () => ({ CustomID: `p${profiles++}` }));
          const r = await fetch(`${base}/api/segments/vip/profiles`, {
            method: 'POST',
            body: JSON.stringify(body),
          });
          expect(r.status).toBe(202);
        }
      })();
      const [syncs, show, stats] = await Promise.all([
        backflow(['--dir', dir, 'syncs', '--all', '--json']),
        backflow(['--dir', dir, 'syncs', 'show', String(started.run_id)]),
        backflow(['--dir', dir, 'segments', 'stats', 'export_vips', '--since', '1h', '--json']),
      ]);
      await feed;
      expect(syncs.code, syncs.stderr).toBe(0);
      expect((JSON.parse(syncs.stdout) as { id: string }[]).map((r) => r.id)).toContain(started.run_id);
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout).toContain(String(started.run_id));
      expect(stats.code, stats.stderr).toBe(0);
      expect(JSON.parse(stats.stdout)).toMatchObject({ integration: 'export_vips', failed_queries: 0 });
    }
    const seg = new Database(join(dir, 'seg.db'), { readonly: true });
    try {
      for (
        let i = 0;
        i < 100 && (seg.prepare('select count(*) from members').pluck().get() as number) < profiles;
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      expect(seg.prepare('select count(*) from members').pluck().get()).toBe(profiles);
    } finally {
      seg.close();
    }
    const stats = await backflow([
      '--dir',
      dir,
      'segments',
      'stats',
      'export_vips',
      '--since',
      '1h',
      '--json',
    ]);
    expect(JSON.parse(stats.stdout).successful_queries).toBeGreaterThanOrEqual(profiles / 5);
    agent.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
  });
});
