import { encodeJson } from '../json.js';
import {
  type DestinationCapability,
  type LoadRecord,
  type LoadRequest,
  type RecordResult,
  UserError,
} from '../sdk.js';
import { backflowVersion, signature, type WebhookSettings } from './connection.js';

/** How transient failures (408, 429, 5xx, network errors, timeouts) of one POST are retried. */
export interface RetryPolicy {
  /** Attempts per POST, the first included. */
  readonly maxAttempts: number;
  /** First backoff; doubles per attempt, with jitter. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** No wait starts that would end later than this after the first attempt (a longer Retry-After gives up). */
  readonly budgetMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 1_000,
  maxDelayMs: 10_000,
  budgetMs: 30_000,
};

export interface WebhookDestinationOptions {
  readonly settings: WebhookSettings;
  readonly retry?: Partial<RetryPolicy>;
}

// What one POST (retries included) came to.
type Outcome =
  | { readonly kind: 'ok' }
  | { readonly kind: 'retry'; readonly code: string; readonly message: string }
  | {
      readonly kind: 'rejected';
      readonly code: string;
      readonly message: string;
      readonly perRecord: boolean;
    };

// One attempt's failure that another attempt may cure.
interface Transient {
  readonly kind: 'transient';
  readonly code: string;
  readonly message: string;
  readonly retryAfterMs?: number;
}

// 4xx that say the endpoint or the credentials are wrong, not a record: splitting the batch would
// only repeat the same answer once per record.
const ENDPOINT_STATUSES = new Set([401, 403, 404, 405, 406, 407, 410, 411, 414, 415, 421, 426, 431]);
const BODY_EXCERPT = 500;
const DRAIN_LIMIT = 64 * 1024;

/**
 * Action `post`: one POST of `{mapping, sync_id, records}` per load. A 4xx that may concern some
 * records splits the batch in halves until the rejected records are isolated, so the good ones land.
 */
export class WebhookDestination implements DestinationCapability {
  readonly #settings: WebhookSettings;
  readonly #retry: RetryPolicy;
  readonly #where: string;

  constructor(options: WebhookDestinationOptions) {
    this.#settings = options.settings;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    // Origin and path only: a query string or user info may hold a token.
    this.#where = `${options.settings.url.origin}${options.settings.url.pathname}`;
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    if (req.action !== 'post') {
      throw new UserError(`webhook destinations have only the \`post\` action, not \`${req.action}\``);
    }
    req.signal?.throwIfAborted();
    if (req.records.length === 0) return [];
    return this.#send(req, req.records);
  }

  async #send(req: LoadRequest, records: readonly LoadRecord[]): Promise<RecordResult[]> {
    const outcome = await this.#post(req, records);
    switch (outcome.kind) {
      case 'ok':
        return records.map(() => ({ status: 'ok' }));
      case 'retry':
        return records.map(() => ({ status: 'retry', code: outcome.code, message: outcome.message }));
      case 'rejected': {
        if (!outcome.perRecord || records.length === 1) {
          return records.map(() => ({ status: 'rejected', code: outcome.code, message: outcome.message }));
        }
        const half = Math.ceil(records.length / 2);
        const left = await this.#send(req, records.slice(0, half));
        const right = await this.#send(req, records.slice(half));
        return [...left, ...right];
      }
    }
  }

  /** One batch POST with its retries. */
  async #post(req: LoadRequest, records: readonly LoadRecord[]): Promise<Outcome> {
    const body = new TextEncoder().encode(
      encodeJson({
        mapping: req.mapping,
        sync_id: req.syncId,
        records: records.map((r) => ({
          change: r.change,
          key: r.key,
          idempotency_key: r.idempotencyKey,
          fields: r.change === 'deleted' ? null : r.fields,
        })),
      }),
    );
    const headers = this.#headers(body);
    const policy = this.#retry;
    const deadline = Date.now() + policy.budgetMs;
    for (let attempt = 1; ; attempt++) {
      const result = await this.#attempt(body, headers, req.signal);
      if (result.kind !== 'transient') return result;
      if (attempt >= policy.maxAttempts) {
        return { kind: 'retry', code: result.code, message: `${result.message} (after ${attempt} attempts)` };
      }
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delay = result.retryAfterMs ?? backoff * (0.5 + Math.random() / 2);
      if (Date.now() + delay > deadline) {
        const why =
          result.retryAfterMs === undefined
            ? `the retry budget of ${policy.budgetMs}ms is spent`
            : `the server asked to retry after ${Math.ceil(delay / 1000)}s`;
        return {
          kind: 'retry',
          code: result.code,
          message: `${result.message} (after ${attempt} attempts; ${why})`,
        };
      }
      await sleep(delay, req.signal);
    }
  }

  #headers(body: Uint8Array): Headers {
    const headers = new Headers({ 'User-Agent': `backflow/${backflowVersion()}` });
    for (const [name, value] of Object.entries(this.#settings.headers)) headers.set(name, value);
    headers.set('Content-Type', 'application/json');
    if (this.#settings.signingSecret) {
      headers.set('X-Backflow-Signature', signature(this.#settings.signingSecret, body));
    }
    return headers;
  }

  async #attempt(
    body: Uint8Array<ArrayBuffer>,
    headers: Headers,
    signal: AbortSignal | undefined,
  ): Promise<Outcome | Transient> {
    const timeout = AbortSignal.timeout(this.#settings.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(this.#settings.url, {
        method: 'POST',
        headers,
        body,
        signal: combined,
        redirect: 'manual',
      });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) {
        return {
          kind: 'transient',
          code: 'timeout',
          message: `POST ${this.#where}: no response within ${this.#settings.timeoutMs}ms`,
        };
      }
      return {
        kind: 'transient',
        code: 'network_error',
        message: `POST ${this.#where}: ${networkMessage(e)}`,
      };
    }
    const status = res.status;
    // Reading a (small) body to its end lets the connection be reused; a success's body is not needed.
    const text = (await readExcerpt(res, DRAIN_LIMIT)).slice(0, BODY_EXCERPT).trim();
    if (status >= 200 && status < 300) return { kind: 'ok' };
    const code = `http_${status}`;
    const message = text ? `${status} ${text}` : `${status}`;
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      return { kind: 'transient', code, message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
    if (status >= 300 && status < 400) {
      const location = res.headers.get('location');
      const to = location ? ` to ${location}` : '';
      return {
        kind: 'rejected',
        code,
        message: `${status} redirect${to}: backflow does not follow redirects, set the destination url to the final address`,
        perRecord: false,
      };
    }
    return { kind: 'rejected', code, message, perRecord: !ENDPOINT_STATUSES.has(status) };
  }
}

/** The first `limit` characters of a response body, without reading a huge one to the end; never throws. */
async function readExcerpt(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // a body cut short (timeout, reset): the status alone has to do
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text;
}

/** `Retry-After`: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function networkMessage(e: unknown): string {
  // undici: TypeError('fetch failed') with the socket error as its cause.
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' && !cause.message.includes(code)
      ? `${code} ${cause.message}`
      : cause.message;
  }
  return String(cause);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
