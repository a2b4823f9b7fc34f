// Three agents (the built CLI) sharing one PostgreSQL runtime store and a counting webhook: the
// runs of one mapping never overlap, and when the agent running a mapping is killed with SIGKILL,
// another takes the mapping over once the lease has expired, abandons the dead run and re-sends
// what was not confirmed.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { WebhookReceiver } from '../harness/webhook-receiver.js';
import { AgentProcess, waitAny } from './agent-process.js';
import { backflow } from './cli.js';

const LEASE_MS = 3_000;
const MAPPINGS = ['items_a', 'items_b'];

let dir: string;
let receiver: WebhookReceiver;
let wh: Database.Database;
let seg: Database.Database;
const agents: AgentProcess[] = [];

const mapping = (name: string) => `
  ${name}:
    model: items
    destination: hook
    action: post
    batch_size: 50
    schedule: { every: 1s }
    fields: { id: id, v: v }`;

describe.skipIf(!serverUrl('postgres'))('three agents on one PostgreSQL store', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backflow-cluster-'));
    receiver = await WebhookReceiver.start({ delayMs: 5 });
    wh = new Database(join(dir, 'wh.db'));
    wh.exec('create table items (id integer primary key, v text)');
    const insert = wh.prepare('insert into items values (?, ?)');
    wh.transaction(() => {
      for (let i = 1; i <= 2000; i++) insert.run(i, `v-${i}`);
    })();
    const storeUrl = await freshDatabase('postgres', 'agent_cluster');
    await writeFile(
      join(dir, 'main.yaml'),
      `
settings:
  store: { url: "${storeUrl}" }
  agent: { listen: "127.0.0.1:0", lease: ${LEASE_MS / 1000}s, poll_interval: 1s }
sources:
  wh: { type: sqlite, path: wh.db }
models:
  items: { source: wh, primary_key: id, sql: "select id, v from items" }
destinations:
  hook: { type: webhook, url: "${receiver.url}" }
mappings:${MAPPINGS.map(mapping).join('')}
connectors:
  seg_db: { type: sqlite, path: seg.db }
segments:
  vip: { id: 42, name: VIP, key: CustomID, members: managed, fields: [CustomID] }
segment_integrations:
  export_vips:
    connector: seg_db
    segments: [vip]
    batch: { size: 10, timeout: 1s }
    queries:
      add: INSERT INTO members (segment_id, id) VALUES {for $index, $lead = $batch}({segment_id}, '{$lead.CustomID}'){autocomma}{end}
      remove: DELETE FROM members WHERE segment_id = {segment_id} AND id IN ({batch_in "CustomID"})
`,
    );
    seg = new Database(join(dir, 'seg.db'));
    seg.exec('create table members (segment_id integer, id text)');
    const apply = await backflow(['--dir', dir, 'apply', '--auto-approve', '--no-refresh']);
    expect(apply.code, apply.stderr).toBe(0);
  });

  afterAll(async () => {
    for (const a of agents) a.kill('SIGKILL');
    wh?.close();
    seg?.close();
    await receiver?.close();
  });

  it('runs each mapping on one agent at a time and takes over from a killed one', {
    timeout: 120_000,
  }, async () => {
    for (let i = 1; i <= 3; i++)
      agents.push(new AgentProcess({ dir, env: { BACKFLOW_AGENT_NAME: `agent-${i}` } }));
    const holders = await Promise.all(
      agents.map(async (a) => String((await a.waitFor((l) => l.event === 'agent_started')).agent)),
    );
    const finished = () => agents.flatMap((a) => a.lines.filter((l) => l.event === 'run_finished'));
    await waitAny(agents, () => finished().length >= 8, 60_000);

    // Segment events through every agent's API: each batch runs on one agent, exactly once.
    const bases = await Promise.all(agents.map((a) => a.base()));
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        fetch(`${bases[i % 3]}/api/segments/vip/profiles`, {
          method: 'POST',
          body: JSON.stringify(Array.from({ length: 5 }, (_, j) => ({ CustomID: `p${i * 5 + j}` }))),
        }).then(async (r) =>
          expect(
            r.status,
            `${await r.text()}\n${agents.flatMap((a) => a.lines.filter((l) => l.event === 'http_error').map((l) => l.message)).join('\n')}`,
          ).toBe(202),
        ),
      ),
    );
    const count = () => seg.prepare('select count(*) from members').pluck().get() as number;
    for (let i = 0; i < 100 && count() < 150; i++) await new Promise((r) => setTimeout(r, 200));
    expect(count()).toBe(150);
    expect(seg.prepare('select id from members group by id having count(*) > 1').all()).toEqual([]);
    const flushedBy = agents.map((a) => a.lines.filter((l) => l.event === 'segment_flush').length);

    // Kill the agent that is loading the change into items_a: its first changed batch has arrived and
    // five more (400 ms each) are to come, so it dies mid-run holding the lease.
    receiver.delayMs = 400;
    wh.prepare("update items set v = v || '+' where id % 7 = 0").run();
    let loading: string | undefined;
    while (!loading) {
      loading = receiver.batches.find(
        (b) => b.mapping === 'items_a' && b.records.some((r) => String(r.fields?.v).endsWith('+')),
      )?.syncId;
      await new Promise((r) => setTimeout(r, 20));
    }
    const victimRun = await waitAny(agents, (l) => l.event === 'run_started' && l.run_id === loading);
    victimRun.agent.kill('SIGKILL');
    const killedAt = Date.now();
    receiver.delayMs = 5;
    await victimRun.agent.exited;
    const victim = agents.indexOf(victimRun.agent);
    const survivors = agents.filter((a) => a !== victimRun.agent);

    const { line: takeover } = await waitAny(
      survivors,
      (l) => l.event === 'lease_taken_over' && l.mapping === 'items_a',
    );
    expect(takeover.previous_holder).toBe(holders[victim]);
    const delay = Date.parse(takeover.time) - killedAt;
    // The lease was renewed at most a third of its length before the kill.
    expect(delay).toBeGreaterThanOrEqual((LEASE_MS * 2) / 3 - 300);
    expect(delay).toBeLessThan(LEASE_MS + 5_000);
    await waitAny(survivors, (l) => l.event === 'run_abandoned' && l.run_id === victimRun.line.run_id);

    // Every key arrives, the destination equals the model, and no two runs of a mapping overlapped.
    const model = () =>
      wh.prepare('select id, v from items order by id').all() as { id: number; v: string }[];
    const matches = () =>
      MAPPINGS.every((m) => {
        const state = receiver.state(m);
        return state.size === model().length && model().every((r) => state.get(String(r.id))?.v === r.v);
      });
    for (let i = 0; i < 150 && !matches(); i++) await new Promise((r) => setTimeout(r, 200));
    expect(matches()).toBe(true);
    for (const m of MAPPINGS) {
      expect(receiver.overlaps(m)).toEqual([]);
      expect(receiver.runs(m).length).toBeGreaterThanOrEqual(2); // the first full send, and the change
    }
    const runsBy = agents.map((a) => a.startedRuns().length);
    expect(runsBy.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);

    const status = await backflow(['--dir', dir, 'syncs', '--all', '--json', '--status', 'failed']);
    expect(status.code, status.stderr).toBe(0);
    const dead = (JSON.parse(status.stdout) as { id: string; errors: { code: string }[] }[]).find(
      (r) => r.id === victimRun.line.run_id,
    );
    expect(dead?.errors.map((e) => e.code)).toContain('abandoned');

    for (const a of survivors) a.kill('SIGTERM');
    for (const a of survivors) expect(await a.exited).toEqual({ code: 0, signal: null });
    process.stderr.write(
      `[agent cluster] runs per agent ${runsBy.join('/')}, segment flushes per agent ${flushedBy.join('/')}, takeover ${delay} ms after kill -9 (lease ${LEASE_MS} ms), ` +
        `${receiver.batches.length} batches, no overlapping runs\n`,
    );
  });
});
