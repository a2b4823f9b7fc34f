// The agent's HTTP API in-process, against a real webhook receiver, a SQLite warehouse and store:
// sync-now, run detail with failed records, reset, replay, the overview's filters, errors as JSON
// (unknown names, wrong methods, malformed and oversized bodies), the token, and /metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent } from '../../engine/agent/agent.js';
import { AgentFixture, eventually, type StartedAgent } from './agent-fixture.js';

const CONFIG = `
settings:
  agent: { listen: "127.0.0.1:0", lease: 5s, poll_interval: 200ms }
sources:
  wh: { type: sqlite, path: wh.db }
models:
  people: { source: wh, primary_key: id, sql: "select id, name from people" }
destinations:
  hook: { type: webhook, url: "\${RECEIVER}" }
mappings:
  to_hook:
    model: people
    destination: hook
    action: post
    batch_size: 50
    fields: { id: id, name: name }
`;

let f: AgentFixture;
let a: StartedAgent;

beforeAll(async () => {
  f = await AgentFixture.create(CONFIG, 120);
  await f.apply();
  a = await f.start();
});

afterAll(async () => {
  a?.agent.stop();
  expect(await a?.agent.exited).toBe(0);
  await f?.close();
});

describe('agent HTTP API', () => {
  it('answers /healthz with the state it runs', async () => {
    const r = await a.call('/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: 'ok',
      state: { serial: 1 },
      store: { kind: 'sqlite', status: 'ok' },
      running: [],
    });
    expect(r.body.agent).toBe(a.agent.holder);
  });

  it('queues a sync (202 with its id), then shows the run; ?wait=true returns the finished run', async () => {
    const queued = await a.call('/api/mappings/to_hook/sync', { method: 'POST' });
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ mapping: 'to_hook', href: `/api/syncs/${queued.body.id}` });
    expect(['queued', 'in_progress', 'success']).toContain(
      (await a.call(`/api/syncs/${queued.body.id}`)).body.status,
    );
    const run = await eventually(async () => {
      const r = await a.call(`/api/syncs/${queued.body.id}`);
      return r.body.status === 'success' ? r.body : undefined;
    });
    expect(run).toMatchObject({
      trigger: 'api',
      extract: { total: 120, added: 120 },
      load: { succeeded: 120 },
      failed_records: [],
    });
    expect(f.receiver.deliveries('to_hook').size).toBe(120);

    f.wh.prepare("update people set name = 'renamed' where id <= 3").run();
    const waited = await a.call('/api/mappings/to_hook/sync?wait=true', { method: 'POST' });
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ status: 'success', extract: { updated: 3 }, load: { attempted: 3 } });
    const logged = await a.waitFor((l) => l.event === 'run_finished' && l.run_id === waited.body.id);
    expect(logged).toMatchObject({
      level: 'info',
      status: 'success',
      extract: { total: 120, updated: 3 },
      load: { succeeded: 3 },
    });
  });

  it('shows failed records of a partial run, replays a run, and resets a mapping', async () => {
    f.receiver.answer = (b) => (b.records.some((r) => Number(r.key) % 10 === 0) ? 422 : 200);
    f.wh.prepare("update people set name = name || '!' where id between 5 and 24").run();
    const partial = (await a.call('/api/mappings/to_hook/sync?wait=1', { method: 'POST' })).body;
    f.receiver.answer = () => 200;
    expect(partial.status).toBe('partial_success');
    expect(partial.load).toMatchObject({ attempted: 20, succeeded: 18, failed: 2 });
    const detail = (await a.call(`/api/syncs/${partial.id}`)).body;
    expect(detail.failed_records.map((r: { key: string }) => r.key).sort()).toEqual(['10', '20']);
    expect(detail.failed_records[0]).toMatchObject({ status: 'failed', code: 'http_422' });

    const replay = await a.call(`/api/syncs/${partial.id}/replay`, { method: 'POST' });
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({
      trigger: 'replay',
      status: 'success',
      load: { attempted: 20, succeeded: 20 },
    });

    const reset = await a.call('/api/mappings/to_hook/reset', { method: 'POST' });
    expect(reset).toMatchObject({ status: 200, body: { mapping: 'to_hook', reset: true } });
    const full = (await a.call('/api/mappings/to_hook/sync?wait=true', { method: 'POST' })).body;
    expect(full.extract).toMatchObject({ total: 120, added: 120 });
    expect(full.load.succeeded).toBe(120);
  });

  it('filters the overview like `backflow syncs`', async () => {
    const latest = (await a.call('/api/syncs')).body.runs;
    expect(latest).toHaveLength(1);
    expect(latest[0]).toMatchObject({ mapping: 'to_hook', mapping_status: 'enabled' });
    const all = (await a.call('/api/syncs?all=true')).body.runs;
    expect(all.length).toBeGreaterThanOrEqual(5);
    const partial = (await a.call('/api/syncs?all=true&status=partial_success')).body.runs;
    expect(partial.map((r: { status: string }) => r.status)).toEqual(['partial_success']);
    expect((await a.call('/api/syncs?all=1&destination=other')).body.runs).toEqual([]);
    expect((await a.call('/api/syncs?all=1&search=TO_HO&since=1h')).body.runs.length).toBe(all.length);
    expect((await a.call('/api/syncs?all=1&mapping_status=disabled')).body.runs).toEqual([]);
  });

  it('answers mistakes with a 4xx and a JSON error, never a crash', async () => {
    const cases: [string, RequestInit | undefined, number, string][] = [
      ['/api/syncs?status=done', undefined, 400, 'invalid_request'],
      ['/api/syncs?since=yesterday-ish', undefined, 400, 'invalid_request'],
      ['/api/syncs?limit=-1', undefined, 400, 'invalid_request'],
      ['/api/syncs/run_nope', undefined, 404, 'unknown_run'],
      ['/api/mappings/nope/sync', { method: 'POST' }, 404, 'unknown_mapping'],
      ['/api/mappings/nope/reset', { method: 'POST' }, 404, 'unknown_mapping'],
      ['/api/syncs/run_nope/replay', { method: 'POST' }, 404, 'unknown_run'],
      ['/api/segments/nope/profiles', { method: 'POST', body: '[]' }, 404, 'unknown_segment'],
      ['/api/segment-integrations/nope/stats', undefined, 404, 'unknown_segment_integration'],
      ['/api/mappings/to_hook/sync', undefined, 405, 'method_not_allowed'],
      ['/api/nothing/here', undefined, 404, 'not_found'],
      ['/healthz', { method: 'DELETE' }, 405, 'method_not_allowed'],
    ];
    for (const [path, init, status, code] of cases) {
      const r = await a.call(path, init);
      expect({ path, status: r.status, code: r.body?.error?.code }).toEqual({ path, status, code });
      expect(typeof r.body.error.message).toBe('string');
    }
    expect((await a.call('/api/mappings/to_hook/sync')).headers.get('allow')).toBe('POST');
    expect((await a.call('/healthz')).status).toBe(200); // still up
  });

  it('serves Prometheus metrics for what it ran', async () => {
    const r = await a.call('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    const text = r.body as string;
    expect(text).toMatch(
      /backflow_sync_runs_total\{mapping="to_hook",status="success",trigger="api"\} [1-9]/,
    );
    expect(text).toMatch(
      /backflow_sync_runs_total\{mapping="to_hook",status="partial_success",trigger="api"\} 1/,
    );
    expect(text).toMatch(/backflow_sync_records_total\{mapping="to_hook",result="failed"\} 2/);
    expect(text).toMatch(/backflow_sync_run_duration_seconds_count\{mapping="to_hook"\} [1-9]/);
    const last = /backflow_last_successful_sync_timestamp_seconds\{mapping="to_hook"\} ([\d.e+]+)/.exec(text);
    expect(Math.abs(Number(last?.[1]) * 1000 - Date.now())).toBeLessThan(120_000);
    expect(text).toContain('# TYPE backflow_segment_queue_depth gauge');
    expect(text).toContain('backflow_agent_state_serial 1');
  });
});

describe('agent HTTP security', () => {
  it('refuses to listen beyond loopback without a token, naming the flag', async () => {
    await expect(f.start({ listen: '0.0.0.0:0' })).rejects.toThrow(/needs --token TOKEN or BACKFLOW_TOKEN/);
  });

  it('checks the bearer token on every request', async () => {
    const t = await f.start({ token: 's3cret-token', listen: '127.0.0.1:0' });
    try {
      expect((await t.call('/healthz')).status).toBe(401);
      const wrong = await t.call('/api/syncs', { headers: { authorization: 'Bearer s3cret-tokeN' } });
      expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
      expect((await t.call('/metrics', { headers: { authorization: 'Basic s3cret-token' } })).status).toBe(
        401,
      );
      const auth = { authorization: 'Bearer s3cret-token' };
      expect((await t.call('/healthz', { headers: auth })).status).toBe(200);
      expect((await t.call('/api/syncs', { headers: auth })).status).toBe(200);
    } finally {
      t.agent.stop();
      expect(await t.agent.exited).toBe(0);
    }
  });

  it('starts with a token on all interfaces', async () => {
    const agent = await startAgent({
      configDir: f.dir,
      settings: { agent: { listen: '0.0.0.0:0' } },
      token: 'tok',
      out: { write: () => true } as unknown as NodeJS.WritableStream,
    });
    try {
      expect(agent.address).toMatch(/^0\.0\.0\.0:\d+$/);
      const port = agent.address!.split(':')[1];
      const r = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { authorization: 'Bearer tok' } });
      expect(r.status).toBe(200);
    } finally {
      agent.stop();
      await agent.exited;
    }
  });
});
