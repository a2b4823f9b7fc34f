// Segment events through the agent's API into a real SQLite connector: batches flushed by size
// and by timeout, removes, clear, stats, queue depth, and bodies the API refuses.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../engine/agent/http.js';
import { AgentFixture, eventually, type StartedAgent } from './agent-fixture.js';

const CONFIG = `
settings:
  agent: { listen: "127.0.0.1:0", lease: 5s }
connectors:
  seg_db: { type: sqlite, path: seg.db }
segments:
  vip: { id: 42, name: VIP customers, key: CustomID, members: managed, fields: [CustomID, Email] }
segment_integrations:
  export_vips:
    connector: seg_db
    segments: [vip]
    batch: { size: 2, timeout: 1s }
    queries:
      add: |
        INSERT INTO members (segment_id, id, email) VALUES
        {for $index, $lead = $batch}({segment_id}, '{$lead.CustomID}', '{$lead.Email}'){autocomma}{end}
      remove: DELETE FROM members WHERE segment_id = {segment_id} AND id IN ({batch_in "CustomID"})
`;

let f: AgentFixture;
let a: StartedAgent;
let seg: Database.Database;
const members = () =>
  seg.prepare('select id, email from members order by id').all() as { id: string; email: string }[];
const json = (body: unknown, method = 'POST'): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

beforeAll(async () => {
  f = await AgentFixture.create(CONFIG, 0);
  seg = new Database(join(f.dir, 'seg.db'));
  seg.exec('create table members (segment_id integer, id text, email text)');
  await f.apply();
  a = await f.start();
});

afterAll(async () => {
  a?.agent.stop();
  expect(await a?.agent.exited).toBe(0);
  seg?.close();
  await f?.close();
});

describe('segment events through the agent', () => {
  it('flushes a full batch at once and a partial one after the timeout', async () => {
    const r = await a.call(
      '/api/segments/vip/profiles',
      json([
        { CustomID: '1', Email: "o'hara@example.com" },
        { CustomID: '2', Email: 'b@example.com' },
      ]),
    );
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({
      segment: 'vip',
      kind: 'add',
      profiles: 2,
      integrations: ['export_vips'],
      events: 2,
    });
    await eventually(() => (members().length === 2 ? true : undefined), 10_000);
    expect(members()).toEqual([
      { id: '1', email: "o'hara@example.com" },
      { id: '2', email: 'b@example.com' },
    ]);

    const queuedAt = Date.now();
    expect(
      (
        await a.call(
          '/api/segments/vip/profiles',
          json({ profiles: [{ CustomID: '3', Email: 'c@example.com' }] }),
        )
      ).status,
    ).toBe(202);
    const depth = (await a.call('/api/segment-queues')).body.queues;
    expect(depth).toMatchObject([{ integration: 'export_vips', segment: 'vip', profiles: 1 }]);
    await eventually(() => (members().length === 3 ? true : undefined), 10_000);
    expect(Date.now() - queuedAt).toBeGreaterThanOrEqual(900); // waited for batch.timeout
    await a.waitFor((l) => l.event === 'segment_flush' && l.integration === 'export_vips');
  });

  it('removes profiles with DELETE, and reports stats', async () => {
    const r = await a.call('/api/segments/vip/profiles', json([{ CustomID: '1' }], 'DELETE'));
    expect(r).toMatchObject({ status: 202, body: { kind: 'remove', profiles: 1 } });
    await eventually(() => (members().length === 2 ? true : undefined), 10_000);
    expect(members().map((m) => m.id)).toEqual(['2', '3']);

    const stats = await a.call('/api/segment-integrations/export_vips/stats?since=1h');
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({
      integration: 'export_vips',
      successful_queries: 3,
      failed_queries: 0,
      errors: [],
    });
    expect((await a.call('/api/segment-integrations/export_vips/stats?since=soon')).status).toBe(400);
    const metrics = (await a.call('/metrics')).body as string;
    expect(metrics).toMatch(
      /backflow_segment_batches_total\{integration="export_vips",result="succeeded"\} 3/,
    );
  });

  it('clears a segment (remove events where there is no clear query) and resyncs it', async () => {
    expect((await a.call('/api/segments/vip/clear', { method: 'POST' })).status).toBe(202);
    await eventually(() => (members().length === 0 ? true : undefined), 10_000);
    await a.call('/api/segments/vip/profiles', json([{ CustomID: '7', Email: 'g@example.com' }]));
    await eventually(() => (members().length === 1 ? true : undefined), 10_000);
    seg.exec('delete from members'); // the CRM lost its table's rows
    const resync = await a.call('/api/segments/vip/resync', { method: 'POST' });
    expect(resync).toMatchObject({ status: 202, body: { kind: 'resync', profiles: 1 } });
    await eventually(() => (members().length === 1 ? true : undefined), 10_000);
  });

  it('refuses bodies that are not profiles, with a JSON error', async () => {
    const post = (body: string, headers: Record<string, string> = {}) =>
      a.call('/api/segments/vip/profiles', { method: 'POST', body, headers });
    expect(await post('{"CustomID": ')).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_json' } },
    });
    expect(await post('')).toMatchObject({ status: 400, body: { error: { code: 'invalid_json' } } });
    expect(await post('{"CustomID": "1"}')).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_profiles' } },
    });
    expect(await post('[1, 2]')).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_profiles' } },
    });
    const noKey = await post('[{"Email": "x@example.com"}]');
    expect(noKey).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(noKey.body.error.message).toMatch(/CustomID/);

    const big = `[${'{"CustomID":"1234567890"},'.repeat(Math.ceil(MAX_BODY_BYTES / 25))}{"CustomID":"x"}]`;
    const tooBig = await post(big);
    expect(tooBig).toMatchObject({ status: 413, body: { error: { code: 'body_too_large' } } });
    // Chunked (no Content-Length): cut off while reading.
    const stream = new ReadableStream({
      start(c) {
        const chunk = new TextEncoder().encode('{"CustomID":"1"},'.repeat(60_000));
        for (let i = 0; i < 12; i++) c.enqueue(chunk);
        c.close();
      },
    });
    const chunked = await fetch(`${a.base}/api/segments/vip/profiles`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await a.call('/healthz')).status).toBe(200);
  });
});

const MODEL_CONFIG = (limit: number) => `
settings:
  agent: { listen: "127.0.0.1:0", lease: 5s, poll_interval: 300ms }
sources:
  wh: { type: sqlite, path: wh.db }
models:
  vips: { source: wh, primary_key: CustomID, sql: "select cast(id as text) as CustomID, name as Email from people where id <= ${limit}" }
connectors:
  seg_db: { type: sqlite, path: seg.db }
segments:
  top: { id: 7, name: Top people, key: CustomID, members: { model: vips } }
segment_integrations:
  export_top:
    connector: seg_db
    segments: [top]
    batch: { size: 100, timeout: 1s }
    queries:
      add: INSERT INTO members (segment_id, id, email) VALUES {for $index, $lead = $batch}({segment_id}, '{$lead.CustomID}', '{$lead.Email}'){autocomma}{end}
      remove: DELETE FROM members WHERE segment_id = {segment_id} AND id IN ({batch_in "CustomID"})
`;

describe('model-backed segments through the agent', () => {
  it('refreshes membership at start and again when an apply changes the model', async () => {
    const m = await AgentFixture.create(MODEL_CONFIG(3), 10);
    const db = new Database(join(m.dir, 'seg.db'));
    db.exec('create table members (segment_id integer, id text, email text)');
    const ids = () =>
      (db.prepare('select id from members order by cast(id as integer)').pluck().all() as string[]).join(',');
    await m.apply();
    const agent = await m.start();
    try {
      const first = await agent.waitFor((l) => l.event === 'segment_refresh');
      expect(first).toMatchObject({ segment: 'top', rows: 3, added: 3, removed: 0 });
      await eventually(() => (ids() === '1,2,3' ? true : undefined), 10_000);

      await m.write(MODEL_CONFIG(5).replace('where id <= 5', 'where id between 2 and 5'));
      await m.apply();
      const second = await agent.waitFor((l) => l.event === 'segment_refresh' && l !== first);
      expect(second).toMatchObject({ rows: 4, added: 2, removed: 1 });
      await eventually(() => (ids() === '2,3,4,5' ? true : undefined), 10_000);
      expect(agent.lines.filter((l) => l.event === 'segment_refresh')).toHaveLength(2); // not every tick
    } finally {
      agent.agent.stop();
      expect(await agent.agent.exited).toBe(0);
      db.close();
      await m.close();
    }
  });
});
