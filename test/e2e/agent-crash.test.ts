// Crash recovery through the built CLI: an agent syncing a few thousand rows every second into a
// webhook is killed with SIGKILL at many points (before, during and between loads) while the model
// keeps changing. After a restart, every key has been delivered at least once and the destination
// holds exactly the model: nothing that was not confirmed is lost.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookReceiver } from '../harness/webhook-receiver.js';
import { AgentProcess } from './agent-process.js';
import { backflow } from './cli.js';

const ROWS = 3000;
const MAPPING = 'items_to_hook';
/** Milliseconds after `agent_started` at which each agent is killed: spread over start-up, loads and idle time. */
const KILL_POINTS = [0, 120, 260, 400, 550, 700, 900, 1150, 1450, 1900];

let dir: string;
let receiver: WebhookReceiver;
let wh: Database.Database;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'backflow-crash-'));
  receiver = await WebhookReceiver.start({ delayMs: 6 });
  wh = new Database(join(dir, 'wh.db'));
  wh.exec('create table items (id integer primary key, v text)');
  const insert = wh.prepare('insert into items values (?, ?)');
  wh.transaction(() => {
    for (let i = 1; i <= ROWS; i++) insert.run(i, `v0-${i}`);
  })();
  await writeFile(
    join(dir, 'main.yaml'),
    `
settings:
  agent: { listen: "127.0.0.1:0", lease: 3s, poll_interval: 500ms }
sources:
  wh: { type: sqlite, path: wh.db }
models:
  items: { source: wh, primary_key: id, sql: "select id, v from items" }
destinations:
  hook: { type: webhook, url: "${receiver.url}" }
mappings:
  items_to_hook:
    model: items
    destination: hook
    action: post
    batch_size: 50
    schedule: { every: 1s }
    fields: { id: id, v: v }
`,
  );
  const apply = await backflow(['--dir', dir, 'apply', '--auto-approve', '--no-refresh']);
  expect(apply.code, apply.stderr).toBe(0);
});

afterAll(async () => {
  wh?.close();
  await receiver?.close();
});

/** Random-ish but reproducible changes: some rows updated, some added. */
function mutate(round: number): void {
  const ids = wh.prepare('select id from items').pluck().all() as number[];
  const update = wh.prepare('update items set v = ? where id = ?');
  const insert = wh.prepare('insert into items (v) values (?)');
  wh.transaction(() => {
    for (let i = 0; i < 40; i++) {
      const id = ids[(round * 7919 + i * 104_729) % ids.length]!;
      update.run(`v${round + 1}-${id}`, id);
    }
    for (let i = 0; i < 25; i++) insert.run(`new${round}-${i}`);
  })();
}

function destinationMatchesModel(): string | undefined {
  const rows = wh.prepare('select id, v from items order by id').all() as { id: number; v: string }[];
  if (receiver.state(MAPPING).size !== rows.length)
    return `destination has ${receiver.state(MAPPING).size} keys, the model ${rows.length}`;
  for (const r of rows) {
    const got = receiver.state(MAPPING).get(String(r.id));
    if (!got || got.id !== r.id || got.v !== r.v)
      return `key ${r.id}: destination ${JSON.stringify(got)}, model ${JSON.stringify(r)}`;
  }
  return undefined;
}

describe('agent crash recovery (kill -9)', () => {
  it('loses no record across many kill points', { timeout: 180_000 }, async () => {
    const t0 = Date.now();
    let killedDuringRun = 0;
    for (const [round, delay] of KILL_POINTS.entries()) {
      mutate(round);
      const agent = new AgentProcess({ dir });
      await agent.base();
      await new Promise((r) => setTimeout(r, delay));
      const started = agent.startedRuns();
      const finished = agent.lines.filter((l) => l.event === 'run_finished').length;
      if (started.length > finished) killedDuringRun++;
      agent.kill('SIGKILL');
      expect((await agent.exited).signal).toBe('SIGKILL');
    }
    expect(killedDuringRun).toBeGreaterThanOrEqual(3);

    mutate(KILL_POINTS.length);
    const last = new AgentProcess({ dir });
    const base = await last.base();
    const recovered = await last.waitFor((l) => l.event === 'run_finished' && l.status === 'success', 60_000);
    let mismatch = destinationMatchesModel();
    for (let i = 0; mismatch && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 200));
      mismatch = destinationMatchesModel();
    }
    expect(mismatch).toBeUndefined();
    const rows = wh.prepare('select id from items').pluck().all() as number[];
    expect(rows.filter((id) => !receiver.deliveries(MAPPING).get(String(id)))).toEqual([]);

    // The CLI reads the store while the agent runs (SQLite in WAL mode).
    const syncs = await backflow(['--dir', dir, 'syncs', '--all', '--json', '--limit', '1000']);
    expect(syncs.code, syncs.stderr).toBe(0);
    const runs = JSON.parse(syncs.stdout) as { id: string; status: string; errors: { code: string }[] }[];
    const abandoned = runs.filter((r) => r.errors.some((e) => e.code === 'abandoned'));
    expect(abandoned.length).toBeGreaterThanOrEqual(killedDuringRun - 1);
    expect(abandoned.every((r) => r.status === 'failed')).toBe(true);
    const show = await backflow(['--dir', dir, 'syncs', 'show', String(recovered.run_id)]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(String(recovered.run_id));
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    last.kill('SIGTERM');
    expect(await last.exited).toEqual({ code: 0, signal: null });
    const delivered = [...receiver.deliveries(MAPPING).values()].reduce((a, b) => a + b, 0);
    process.stderr.write(
      `[agent crash] ${KILL_POINTS.length} kills (${killedDuringRun} during a run), ${abandoned.length} runs abandoned, ` +
        `${rows.length} keys, ${delivered} deliveries (${(delivered / rows.length).toFixed(2)} per key), ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  });
});
