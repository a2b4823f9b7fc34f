// The built CLI's agent: SIGTERM lets a short run finish and abandons a long one safely (exit 0,
// bounded time), the CLI reads the store while a sync runs, start-up mistakes are one clear line,
// and `--once` exits 1 when a run failed.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookReceiver } from '../harness/webhook-receiver.js';
import { AgentProcess } from './agent-process.js';
import { backflow } from './cli.js';

const MAPPING = 'rows_to_hook';
let dir: string;
let receiver: WebhookReceiver;
let wh: Database.Database;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'backflow-shutdown-'));
  receiver = await WebhookReceiver.start();
  wh = new Database(join(dir, 'wh.db'));
  wh.exec('create table t (id integer primary key, v text)');
  const insert = wh.prepare('insert into t values (?, ?)');
  wh.transaction(() => {
    for (let i = 1; i <= 400; i++) insert.run(i, `v${i}`);
  })();
  await writeFile(
    join(dir, 'main.yaml'),
    `
settings:
  agent: { listen: "127.0.0.1:0", lease: 5s }
sources:
  wh: { type: sqlite, path: wh.db }
models:
  rows: { source: wh, primary_key: id, sql: "select id, v from t" }
destinations:
  hook: { type: webhook, url: "${receiver.url}" }
mappings:
  ${MAPPING}: { model: rows, destination: hook, action: post, batch_size: 20, schedule: { every: 1h }, fields: { id: id, v: v } }
`,
  );
  const apply = await backflow(['--dir', dir, 'apply', '--auto-approve', '--no-refresh']);
  expect(apply.code, apply.stderr).toBe(0);
});

afterAll(async () => {
  wh?.close();
  await receiver?.close();
});

describe('agent shutdown', () => {
  it('aborts a long run safely on SIGTERM after the grace period, and the next start re-sends it', {
    timeout: 90_000,
  }, async () => {
    receiver.delayMs = 400; // 20 batches: about 8 s
    const agent = new AgentProcess({ dir, args: ['--shutdown-grace', '1s'] });
    const started = await agent.waitFor((l) => l.event === 'run_started');
    while (receiver.batches.length < 2) await new Promise((r) => setTimeout(r, 50));

    // The CLI reads the store while the agent writes to it.
    const syncs = await backflow(['--dir', dir, 'syncs', '--json']);
    expect(syncs.code, syncs.stderr).toBe(0);
    expect(JSON.parse(syncs.stdout)).toMatchObject([{ id: started.run_id, status: 'in_progress' }]);
    const show = await backflow(['--dir', dir, 'syncs', 'show', String(started.run_id)]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('in_progress');

    const t = Date.now();
    agent.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    const took = Date.now() - t;
    expect(took).toBeLessThan(1000 + 5_000);
    const finished = agent.lines.find((l) => l.event === 'run_finished');
    expect(finished).toMatchObject({ run_id: started.run_id, status: 'failed' });
    expect((finished!.errors as { code: string }[]).map((e) => e.code)).toContain('interrupted');
    expect(agent.lines.at(-1)).toMatchObject({ event: 'shutdown_complete', clean: true });
    const confirmed = receiver.state(MAPPING).size;
    expect(confirmed).toBeLessThan(400);

    receiver.delayMs = 0;
    const next = new AgentProcess({ dir });
    const resumed = await next.waitFor((l) => l.event === 'run_finished');
    expect(resumed).toMatchObject({ trigger: 'retry', status: 'success', extract: { added: 400 } });
    expect(receiver.state(MAPPING).size).toBe(400);
    next.kill('SIGINT');
    expect(await next.exited).toEqual({ code: 0, signal: null });
    process.stderr.write(
      `[agent shutdown] SIGTERM mid-run with 1s grace: exited 0 after ${took} ms; ${confirmed}/400 confirmed before\n`,
    );
  });

  it('lets a run finish within the grace period', { timeout: 60_000 }, async () => {
    receiver.delayMs = 60; // about 1.2 s
    const agent = new AgentProcess({ dir });
    await fetch(`${await agent.base()}/api/mappings/${MAPPING}/sync?reset=true`, { method: 'POST' });
    const started = await agent.waitFor((l) => l.event === 'run_started');
    agent.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(agent.lines.find((l) => l.event === 'run_finished')).toMatchObject({
      run_id: started.run_id,
      status: 'success',
    });
    receiver.delayMs = 0;
  });

  it('a second signal aborts at once', { timeout: 60_000 }, async () => {
    receiver.delayMs = 300;
    const agent = new AgentProcess({ dir, args: ['--shutdown-grace', '60s'] });
    await fetch(`${await agent.base()}/api/mappings/${MAPPING}/sync?reset=true`, { method: 'POST' });
    await agent.waitFor((l) => l.event === 'run_started');
    agent.kill('SIGTERM');
    await agent.waitFor((l) => l.event === 'shutdown_started');
    const t = Date.now();
    agent.kill('SIGINT');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - t).toBeLessThan(5_000);
    expect(agent.lines.find((l) => l.event === 'run_finished')).toMatchObject({ status: 'failed' });
    receiver.delayMs = 0;
  });

  it('reports start-up mistakes in one line, without a stack trace', async () => {
    const open = await backflow(['--dir', dir, 'agent', '--listen', '0.0.0.0:0']);
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/needs --token TOKEN or BACKFLOW_TOKEN/);
    expect(open.stderr).not.toMatch(/\n\s+at /);
    const bad = await backflow(['--dir', dir, 'agent', '--listen', 'nowhere']);
    expect(bad).toMatchObject({ code: 1 });
    expect(bad.stderr).toMatch(/--listen nowhere is not an address/);

    const first = new AgentProcess({ dir });
    const base = await first.base();
    const taken = await backflow(['--dir', dir, 'agent', '--listen', base.slice('http://'.length)]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/cannot listen on .*EADDRINUSE/);
    expect(taken.stderr).not.toMatch(/\n\s+at /);
    first.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const withToken = new AgentProcess({
      dir,
      args: ['--listen', '0.0.0.0:0'],
      env: { BACKFLOW_TOKEN: 'from-env' },
    });
    const port = (await withToken.base()).split(':').at(-1);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(401);
    expect(
      (await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { authorization: 'Bearer from-env' } }))
        .status,
    ).toBe(200);
    withToken.kill('SIGTERM');
    expect((await withToken.exited).code).toBe(0);
  });

  it('--once runs what is due and exits (exit 1 on a failed run is covered in-process)', async () => {
    const once = await backflow(['--dir', dir, 'agent', '--once']);
    expect(once.code, once.stderr).toBe(0);
    const lines = once.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(lines.at(-1)).toMatchObject({ event: 'once_complete', runs: 0 }); // ran within the hour: not due
  });
});
