import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type ConnectionSettings, UserError } from '../sdk.js';
import { parseDuration } from '../sql/settings.js';

/** A webhook destination's settings, checked once when the session opens. */
export interface WebhookSettings {
  readonly url: URL;
  /** The user's headers (values may be secrets: never logged). */
  readonly headers: Readonly<Record<string, string>>;
  readonly signingSecret?: string;
  /** Per-request timeout. */
  readonly timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

// Headers backflow computes itself: a user value would break the body or its signature.
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'transfer-encoding',
  'host',
  'x-backflow-signature',
]);

export function parseWebhookSettings(settings: ConnectionSettings, address: string): WebhookSettings {
  if (!settings.url) {
    throw new UserError(`${address}: a webhook destination needs \`url\``, {
      hint: 'set url: https://… (a secret in it can come from an environment variable)',
    });
  }
  let url: URL;
  try {
    url = new URL(settings.url);
  } catch {
    // No cause: it carries the URL, which may hold a resolved secret.
    throw new UserError(`${address}: \`url\` is not a valid URL`, { hint: 'use an absolute http(s) URL' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UserError(`${address}: \`url\` must be http or https, not ${url.protocol.replace(':', '')}`);
  }
  const headers = settings.headers ?? {};
  for (const [name, value] of Object.entries(headers)) {
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw new UserError(`${address}: header \`${name}\` is set by backflow and cannot be configured`);
    }
    try {
      new Headers([[name, value]]);
    } catch {
      // The value may be a resolved secret and the platform's message quotes it: name the header only.
      throw new UserError(`${address}: header \`${name}\` has an invalid name or value`, {
        hint: 'header values cannot contain line breaks',
      });
    }
  }
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (settings.timeout !== undefined) {
    const parsed = parseDuration(settings.timeout);
    if (parsed === undefined || parsed <= 0) {
      throw new UserError(`${address}: \`timeout\` ${JSON.stringify(settings.timeout)} is not a duration`, {
        hint: 'write a number and a unit: 500ms, 30s, 2m',
      });
    }
    timeoutMs = parsed;
  }
  return {
    url,
    headers,
    timeoutMs,
    ...(settings.signing_secret ? { signingSecret: settings.signing_secret } : {}),
  };
}

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`, what X-Backflow-Signature carries. */
export function signature(secret: string, body: Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

let cachedVersion: string | undefined;

/** backflow's own version, from the package.json above this file (source tree and dist alike). */
export function backflowVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  cachedVersion = '0.0.0';
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'backflow' && typeof pkg.version === 'string') {
        cachedVersion = pkg.version;
        break;
      }
    } catch {
      // not here: keep walking up
    }
    if (dir.pathname === '/') break;
  }
  return cachedVersion;
}
