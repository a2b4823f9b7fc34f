import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectionSettings, LoadRecord, Session } from '../../providers/sdk.js';
import { UserError } from '../../providers/sdk.js';
import { parseRetryAfter } from '../../providers/webhook/destination.js';
import { provider, webhookProvider } from '../../providers/webhook/index.js';

/** A request as the receiver saw it: the raw body bytes, so the signature can be checked on them. */
interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: Buffer;
  readonly body: { mapping: string; sync_id: string; records: Array<Record<string, unknown>> };
  readonly at: number;
}

type Handler = (req: Received, res: ServerResponse) => void;

let server: Server;
let base: string;
let received: Received[] = [];
let handler: Handler = (_req, res) => res.writeHead(204).end();

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const r: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        raw,
        body: JSON.parse(raw.toString('utf8')) as Received['body'],
        at: Date.now(),
      };
      received.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received = [];
  handler = (_req, res) => res.writeHead(204).end();
});

const FAST = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 40, budgetMs: 10_000 };

async function open(settings: Partial<ConnectionSettings> = {}, retry = FAST): Promise<Session> {
  return webhookProvider(retry).open({
    settings: { type: 'webhook', url: `${base}/hook?token=secret-token`, ...settings },
    configDir: '/nonexistent',
    address: 'destination.hook',
  });
}

function records(
  n: number,
  fields: (i: number) => Record<string, unknown> = (i) => ({ email: `u${i}@x.io` }),
) {
  return Array.from(
    { length: n },
    (_, i): LoadRecord => ({
      change: 'added',
      key: String(i),
      idempotencyKey: `idem-${i}`,
      fields: fields(i),
    }),
  );
}

async function load(session: Session, recs: readonly LoadRecord[], signal?: AbortSignal) {
  const destination = session.destination;
  if (!destination) throw new Error('no destination');
  return destination.load({
    mapping: 'users_to_hook',
    syncId: 'run-1',
    action: 'post',
    options: {},
    records: recs,
    ...(signal ? { signal } : {}),
  });
}

describe('webhook post', () => {
  it('posts one batch with the spec body, headers and a verifiable signature', async () => {
    const session = await open({
      headers: { Authorization: 'Bearer abc', 'X-Team': 'data' },
      signing_secret: 's3cr3t',
    });
    const recs: LoadRecord[] = [
      {
        change: 'added',
        key: '1',
        idempotencyKey: 'k1',
        fields: { email: 'a@x.io', n: 12345678901234567890n },
      },
      { change: 'updated', key: '2', idempotencyKey: 'k2', fields: { email: 'b@x.io', tags: ['x'] } },
      { change: 'deleted', key: '3', idempotencyKey: 'k3', fields: null },
    ];
    const results = await load(session, recs);
    await session.close();

    expect(results).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
    expect(received).toHaveLength(1);
    const [req] = received;
    if (!req) throw new Error('nothing received');
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hook?token=secret-token');
    expect(req.body).toEqual({
      mapping: 'users_to_hook',
      sync_id: 'run-1',
      records: [
        {
          change: 'added',
          key: '1',
          idempotency_key: 'k1',
          fields: { email: 'a@x.io', n: '12345678901234567890' },
        },
        { change: 'updated', key: '2', idempotency_key: 'k2', fields: { email: 'b@x.io', tags: ['x'] } },
        { change: 'deleted', key: '3', idempotency_key: 'k3', fields: null },
      ],
    });
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toMatch(/^backflow\/\d+\.\d+\.\d+/);
    expect(req.headers.authorization).toBe('Bearer abc');
    expect(req.headers['x-team']).toBe('data');

    const header = String(req.headers['x-backflow-signature']);
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    const expected = createHmac('sha256', 's3cr3t').update(req.raw).digest();
    expect(timingSafeEqual(Buffer.from(header.slice('sha256='.length), 'hex'), expected)).toBe(true);
  });

  it('sends no signature without a signing secret, and nothing for an empty batch', async () => {
    const session = await open();
    expect(await load(session, [])).toEqual([]);
    expect(received).toHaveLength(0);
    await load(session, records(1));
    expect(received[0]?.headers['x-backflow-signature']).toBeUndefined();
  });

  it('treats any 2xx as success', async () => {
    handler = (_req, res) => res.writeHead(202, { 'content-type': 'text/plain' }).end('queued');
    expect(await load(await open(), records(2))).toEqual([{ status: 'ok' }, { status: 'ok' }]);
  });

  it('retries a 500 and succeeds, sending the same body again', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(500).end('boom');
      else res.writeHead(200).end('{}');
    };
    const results = await load(await open({ signing_secret: 'k' }), records(3));
    expect(results).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
    expect(received).toHaveLength(2);
    expect(received[1]?.raw.equals(received[0]?.raw ?? Buffer.alloc(0))).toBe(true);
    expect(received[1]?.headers['x-backflow-signature']).toBe(received[0]?.headers['x-backflow-signature']);
  });

  it('honours Retry-After on a 429', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(429, { 'retry-after': '1' }).end('slow down');
      else res.writeHead(200).end();
    };
    const results = await load(await open(), records(2));
    expect(results).toEqual([{ status: 'ok' }, { status: 'ok' }]);
    expect(received).toHaveLength(2);
    const waited = (received[1]?.at ?? 0) - (received[0]?.at ?? 0);
    expect(waited).toBeGreaterThanOrEqual(950);
  });

  it('gives up at once when Retry-After is beyond the retry budget', async () => {
    handler = (_req, res) => res.writeHead(503, { 'retry-after': '3600' }).end('maintenance');
    const started = Date.now();
    const results = await load(await open(), records(2));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(received).toHaveLength(1);
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r).toMatchObject({ status: 'retry', code: 'http_503' });
      if (r.status !== 'ok') expect(r.message).toMatch(/^503 maintenance .*retry after 3600s/);
    }
  });

  it('marks every record retry after the last attempt of a persistent 5xx', async () => {
    handler = (_req, res) => res.writeHead(502).end(`bad gateway ${'x'.repeat(2000)}`);
    const results = await load(await open(), records(3));
    expect(received).toHaveLength(FAST.maxAttempts);
    expect(results).toHaveLength(3);
    for (const r of results) {
      expect(r.status).toBe('retry');
      if (r.status === 'ok') continue;
      expect(r.code).toBe('http_502');
      // the status, then the first 500 characters of the body
      expect(
        r.message.startsWith(`502 bad gateway ${'x'.repeat(500 - 'bad gateway '.length)} (after 3 attempts`),
      ).toBe(true);
    }
  });

  it('splits a 400 batch until exactly the records with an invalid email are rejected', async () => {
    const delivered: string[] = [];
    handler = (req, res) => {
      const bad = req.body.records.filter(
        (r) => !String((r.fields as { email: string }).email).includes('@'),
      );
      if (bad.length > 0) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'invalid email', keys: bad.map((r) => r.key) }));
        return;
      }
      delivered.push(...req.body.records.map((r) => String(r.key)));
      res.writeHead(200).end();
    };
    const badKeys = new Set(['2', '3', '9']);
    const recs = records(12, (i) => ({ email: badKeys.has(String(i)) ? `user${i}` : `u${i}@x.io` }));
    const results = await load(await open(), recs);

    expect(results).toHaveLength(12);
    results.forEach((r, i) => {
      if (badKeys.has(String(i))) {
        expect(r).toMatchObject({ status: 'rejected', code: 'http_400' });
        if (r.status !== 'ok') expect(r.message).toBe(`400 {"error":"invalid email","keys":["${i}"]}`);
      } else {
        expect(r).toEqual({ status: 'ok' });
      }
    });
    // every good record landed exactly once, in order
    expect(delivered).toEqual(recs.map((r) => r.key).filter((k) => !badKeys.has(k)));
    // halving finds 3 bad records among 12 in far fewer requests than one per record
    expect(received.length).toBeLessThan(2 * 12);
  });

  it('does not split on a 4xx about the endpoint (404)', async () => {
    handler = (_req, res) => res.writeHead(404).end('no such hook');
    const results = await load(await open(), records(8));
    expect(received).toHaveLength(1);
    expect(results).toEqual(
      Array.from({ length: 8 }, () => ({
        status: 'rejected',
        code: 'http_404',
        message: '404 no such hook',
      })),
    );
  });

  it('does not follow redirects', async () => {
    handler = (_req, res) => res.writeHead(301, { location: 'https://example.invalid/new' }).end();
    const results = await load(await open(), records(2));
    expect(received).toHaveLength(1);
    expect(results[0]).toMatchObject({ status: 'rejected', code: 'http_301' });
    if (results[0]?.status === 'rejected')
      expect(results[0].message).toContain('https://example.invalid/new');
  });

  it('retries a network error against a closed port, then marks the records retry', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const session = await open({ url: `http://127.0.0.1:${port}/hook?token=t0ps3cret` });
    const results = await load(session, records(2));
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r).toMatchObject({ status: 'retry', code: 'network_error' });
      if (r.status === 'ok') continue;
      expect(r.message).toContain('ECONNREFUSED');
      expect(r.message).toContain(`127.0.0.1:${port}/hook`);
      expect(r.message).not.toContain('t0ps3cret');
    }
  });

  it('times out a receiver that never answers', async () => {
    handler = () => {}; // hold the request open
    const started = Date.now();
    const results = await load(await open({ timeout: '200ms' }, { ...FAST, maxAttempts: 2 }), records(2));
    const took = Date.now() - started;
    expect(received).toHaveLength(2);
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(3_000);
    for (const r of results) {
      expect(r).toMatchObject({ status: 'retry', code: 'timeout' });
      if (r.status !== 'ok') expect(r.message).toContain('no response within 200ms');
    }
  });

  it('stops when the caller aborts, mid-request or while waiting to retry', async () => {
    handler = () => {};
    const session = await open({ timeout: '10s' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutting down')), 100);
    await expect(load(session, records(1), controller.signal)).rejects.toThrow('shutting down');

    handler = (_req, res) => res.writeHead(503, { 'retry-after': '5' }).end();
    const waiting = new AbortController();
    setTimeout(() => waiting.abort(new Error('stop waiting')), 200);
    const started = Date.now();
    await expect(load(session, records(1), waiting.signal)).rejects.toThrow('stop waiting');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('webhook open', () => {
  const at = { configDir: '/x', address: 'destination.hook' };

  it('uses the webhook manifest', () => {
    expect(provider.manifest.type).toBe('webhook');
    expect(Object.keys(provider.manifest.actions)).toEqual(['post']);
  });

  it('refuses bad settings with the resource address', async () => {
    await expect(provider.open({ ...at, settings: { type: 'webhook' } })).rejects.toThrow(
      'destination.hook: a webhook destination needs `url`',
    );
    await expect(
      provider.open({ ...at, settings: { type: 'webhook', url: 'ftp://x' } }),
    ).rejects.toBeInstanceOf(UserError);
    await expect(
      provider.open({ ...at, settings: { type: 'webhook', url: 'http://x', timeout: 'soon' } }),
    ).rejects.toThrow('`timeout` "soon" is not a duration');
    await expect(
      provider.open({
        ...at,
        settings: { type: 'webhook', url: 'http://x', headers: { 'Content-Type': 'text/plain' } },
      }),
    ).rejects.toThrow('header `Content-Type` is set by backflow');
    const bad = provider.open({
      ...at,
      settings: { type: 'webhook', url: 'http://x', headers: { Authorization: 'Bearer s3cret\r\nX: y' } },
    });
    await expect(bad).rejects.toThrow('header `Authorization` has an invalid name or value');
    const error: unknown = await bad.catch((e: unknown) => e);
    // neither the message nor a kept cause may carry the secret
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('s3cret');
    expect((error as Error).cause).toBeUndefined();
    const badUrl: unknown = await provider
      .open({ ...at, settings: { type: 'webhook', url: 'http//tok3n@x' } })
      .catch((e: unknown) => e);
    expect((badUrl as Error).message).toBe('destination.hook: `url` is not a valid URL');
    expect((badUrl as Error).cause).toBeUndefined();
  });

  it('opens a session with only a destination', async () => {
    const session = await provider.open({ ...at, settings: { type: 'webhook', url: 'http://127.0.0.1:1/' } });
    expect(Object.keys(session).sort()).toEqual(['close', 'destination']);
    await session.close();
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sun, 31 Dec 2023 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('later', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
