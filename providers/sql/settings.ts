/**
 * Connection settings every database provider reads the same way: the `url` (checked without
 * ever quoting it: it may hold a resolved password) and `statement_timeout`.
 */
import type { ConnectionSettings } from '../sdk.js';
import { UserError } from '../sdk.js';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `15m`, `24h`, `14d` (the schema's duration) → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  const unit = m?.[2] === undefined ? undefined : UNIT_MS[m[2]];
  return m?.[1] === undefined || unit === undefined ? undefined : Number(m[1]) * unit;
}

/**
 * `statement_timeout` as `{ statementTimeoutMs }`, or `{}` when unset. A malformed duration (or a
 * zero one, unless `allowZero`) is a UserError.
 */
export function optionalTimeout(
  text: string | undefined,
  address: string,
  allowZero = false,
): { statementTimeoutMs?: number } {
  if (text === undefined) return {};
  const ms = parseDuration(text);
  if (ms === undefined || (ms === 0 && !allowZero)) {
    throw new UserError(`${address}: \`statement_timeout\` ${JSON.stringify(text)} is not a duration`, {
      hint: 'write a number and a unit: 500ms, 30s, 5m',
    });
  }
  return { statementTimeoutMs: ms };
}

/** How a provider names itself in the messages about its `url`. */
export interface UrlSpec {
  /** `a postgres`, `an oracle`: who needs the url. */
  readonly needs: string;
  /** The hint when `url` is missing: `set url: …`. */
  readonly example: string;
  /** The hint when `url` does not parse: `use …`. */
  readonly use: string;
}

/**
 * The connection's `url` as written and parsed; a missing or malformed one is a UserError that does
 * not quote it.
 */
export function parseUrl(
  settings: ConnectionSettings,
  address: string,
  spec: UrlSpec,
): { readonly url: string; readonly parsed: URL } {
  if (!settings.url) {
    throw new UserError(`${address}: ${spec.needs} connection needs \`url\``, {
      hint: `set url: ${spec.example}`,
    });
  }
  try {
    return { url: settings.url, parsed: new URL(settings.url) };
  } catch {
    // No cause: the URL may hold a resolved password.
    throw new UserError(`${address}: \`url\` is not a valid URL`, { hint: `use ${spec.use}` });
  }
}
