import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../errors.js';

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** An HTTP answer other than 2xx, sent as `{error: {code, message, hint?}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: { hint?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
}

/** Where to listen: `HOST:PORT`, `[V6]:PORT` or `:PORT` (every interface). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  readonly loopback: boolean;
}

export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new UserError(`--listen ${text} is not an address`, {
      hint: 'use HOST:PORT, e.g. 127.0.0.1:7465, [::1]:7465 or 0.0.0.0:7465',
    });
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port, loopback: isLoopback(host) };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** A parsed request handed to routes. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly params: Readonly<Record<string, string>>;
  /** The body parsed as JSON (400 when it is not JSON, 413 when it is too large). */
  json(): Promise<unknown>;
}

/** What a route returns: a status and a JSON value, or raw text (metrics). */
export type ApiResponse =
  | { readonly status: number; readonly json: unknown; readonly headers?: Record<string, string> }
  | { readonly status: number; readonly text: string; readonly contentType: string };

export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** `/api/syncs/:id` — a `:name` segment matches one path segment. */
  readonly path: string;
  readonly handle: (req: ApiRequest) => Promise<ApiResponse>;
}

interface CompiledRoute extends Route {
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

export interface ServeRequest {
  readonly listen: ListenAddress;
  /** When set, every request must carry `Authorization: Bearer TOKEN`. */
  readonly token: string | undefined;
  readonly routes: readonly Route[];
  /** For failures that are ours (a 500): the message goes to the log, never to the client. */
  readonly onError: (e: unknown, req: { method: string; path: string }) => void;
}

export interface HttpServer {
  /** `HOST:PORT` as bound (the port is real even when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

/** Serves JSON routes with bearer-token auth, a body cap and JSON errors for every failure. */
export async function serve(req: ServeRequest): Promise<HttpServer> {
  const routes: CompiledRoute[] = req.routes.map((r) => {
    const names: string[] = [];
    const source = r.path.replace(/:([a-z_]+)/g, (_m, n: string) => {
      names.push(n);
      return '([^/]+)';
    });
    return { ...r, pattern: new RegExp(`^${source}$`), names };
  });
  const tokenDigest = req.token === undefined ? undefined : digest(req.token);
  const server = createServer((incoming, res) => {
    handle(incoming, res).catch((e: unknown) => {
      req.onError(e, { method: incoming.method ?? '', path: incoming.url ?? '' });
      if (!res.headersSent)
        send(res, { status: 500, json: errorBody('internal', 'internal error; see the agent log') });
      else res.destroy();
    });
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;

  async function handle(incoming: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(incoming.url ?? '/', 'http://agent');
    const method = incoming.method ?? 'GET';
    try {
      if (tokenDigest && !authorized(incoming.headers.authorization, tokenDigest))
        throw new HttpError(401, 'unauthorized', 'missing or wrong bearer token', {
          hint: 'send `Authorization: Bearer TOKEN` with the token the agent was started with',
          headers: { 'www-authenticate': 'Bearer' },
        });
      const matching = routes
        .map((r) => ({ r, m: r.pattern.exec(url.pathname) }))
        .filter((x): x is { r: CompiledRoute; m: RegExpExecArray } => x.m !== null);
      if (matching.length === 0) throw new HttpError(404, 'not_found', `no such endpoint ${url.pathname}`);
      const hit = matching.find((x) => x.r.method === method);
      if (!hit) {
        const allow = [...new Set(matching.map((x) => x.r.method))].join(', ');
        throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`, {
          hint: `use ${allow}`,
          headers: { allow },
        });
      }
      const params: Record<string, string> = {};
      hit.r.names.forEach((n, i) => {
        params[n] = decodeURIComponent(hit.m[i + 1] ?? '');
      });
      const response = await hit.r.handle({
        method,
        path: url.pathname,
        query: url.searchParams,
        params,
        json: () => readJson(incoming),
      });
      send(res, response);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      if (e.status === 413) res.setHeader('connection', 'close');
      send(res, {
        status: e.status,
        json: errorBody(e.code, e.message, e.extra.hint),
        ...(e.extra.headers ? { headers: e.extra.headers } : {}),
      });
      if (e.status === 413) drain(incoming);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new UserError(`cannot listen on ${req.listen.host}:${req.listen.port}: ${e.message}`, {
          hint:
            e.code === 'EADDRINUSE'
              ? 'another process uses the port: pass --listen HOST:PORT'
              : 'check --listen',
          cause: e,
        }),
      ),
    );
    server.listen(req.listen.port, req.listen.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const address =
    bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  return { address, close: () => closeServer(server) };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Constant time: both sides are hashed to 32 bytes, so neither length nor content leaks. */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer[ \t]+(\S.*)$/i.exec(header ?? '');
  const given = digest(m?.[1]?.trim() ?? '');
  return timingSafeEqual(given, expected) && m !== null;
}

export function errorBody(code: string, message: string, hint?: string) {
  return { error: { code, message, ...(hint ? { hint } : {}) } };
}

function send(res: ServerResponse, r: ApiResponse): void {
  if ('text' in r) {
    res.writeHead(r.status, { 'content-type': r.contentType });
    res.end(r.text);
    return;
  }
  const body = r.status === 204 ? '' : `${JSON.stringify(r.json)}\n`;
  res.writeHead(r.status, {
    ...(r.status === 204 ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'cache-control': 'no-store',
    ...r.headers,
  });
  res.end(body);
}

async function readJson(incoming: IncomingMessage): Promise<unknown> {
  const declared = Number(incoming.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  // Listeners rather than for-await: leaving an async iterator early destroys the socket, and the
  // client would never see the 413.
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else {
        incoming.off('data', onData);
        incoming.off('end', onEnd);
        reject(tooLarge());
      }
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', reject);
  });
  const text = raw.toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'the request body is empty; send JSON');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `the request body is not JSON: ${(e as Error).message}`);
  }
}

function tooLarge(): HttpError {
  return new HttpError(
    413,
    'body_too_large',
    `the request body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MB`,
    {
      hint: 'send profiles in several requests',
    },
  );
}

/** Reads and drops the rest of a refused body (so the client sees the 413), up to a bound. */
function drain(incoming: IncomingMessage): void {
  let seen = 0;
  incoming.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > 8 * MAX_BODY_BYTES) incoming.destroy();
  });
  incoming.on('error', () => undefined);
  incoming.resume();
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), 5_000);
  force.unref();
  await closed;
  clearTimeout(force);
}
