import pg from 'pg';
import { parseJsonKeepingText } from '../json.js';
import { type ConnectionSettings, ProviderError, UserError } from '../sdk.js';
import { optionalTimeout, parseUrl } from '../sql/settings.js';

/** A PostgreSQL connection's settings, checked once when the session opens. */
export interface PostgresSettings {
  /** The connection URL (may hold a resolved password: never put it in a message). */
  readonly url: string;
  /** `host:port/database`, safe for messages. */
  readonly where: string;
  readonly statementTimeoutMs?: number;
}

export function parsePostgresSettings(settings: ConnectionSettings, address: string): PostgresSettings {
  const { url, parsed } = parseUrl(settings, address, {
    needs: 'a postgres',
    example: 'postgres://user:${env:PGPASSWORD}@host:5432/database',
    use: 'postgres://user@host:5432/database',
  });
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new UserError(`${address}: \`url\` must start with postgres://, not ${parsed.protocol}//`);
  }
  const timeout = optionalTimeout(settings.statement_timeout, address, true);
  return {
    url,
    where: describeUrl(parsed),
    ...timeout,
  };
}

/** `host:port/database` of a postgres URL, without user or password. */
export function describeUrl(url: URL | string): string {
  const u = typeof url === 'string' ? new URL(url) : url;
  const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres';
  return `${u.hostname || 'localhost'}:${u.port || '5432'}/${db}`;
}

// --- type parsers: faithful values, set per connection (never pg's global registry) ----------

type Parser = (text: string) => unknown;
const identity: Parser = (text) => text;
const defaultParser = (oid: number): Parser => pg.types.getTypeParser(oid, 'text') as Parser;
// pg's text[] parser: handles quoting, escapes, NULL and nested dimensions; elements stay text.
const parseTextArray = defaultParser(1009) as (text: string) => unknown[] | null;

const TS_TZ = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/;

/**
 * A timestamptz in DateStyle ISO (`2024-01-02 03:04:05.123456+05:30`) as ISO-8601 UTC with every
 * fractional digit kept (`2024-01-01T21:34:05.123456Z`). `infinity`, BC dates and years past 9999 stay
 * as PostgreSQL wrote them.
 */
export function timestamptzToIso(text: string): string {
  // Fast path, the common case (a server or session in UTC): `YYYY-MM-DD HH:MM:SS[.f]+00`.
  if (text.length >= 22 && text.charCodeAt(10) === 32 && text.endsWith('+00') && text.charCodeAt(4) === 45) {
    return `${text.slice(0, 10)}T${text.slice(11, -3)}Z`;
  }
  const m = TS_TZ.exec(text);
  if (!m) return text;
  const [, y, mo, d, h, mi, s, frac = '', sign, oh, om = '0', os = '0'] = m;
  const offsetMs = (sign === '-' ? -1 : 1) * ((Number(oh) * 60 + Number(om)) * 60 + Number(os)) * 1000;
  // Date.parse, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}Z`) - offsetMs;
  if (Number.isNaN(ms)) return text;
  const iso = new Date(ms).toISOString(); // whole seconds: the fraction is appended as the server gave it
  if (!/^\d{4}-/.test(iso)) return text;
  return `${iso.slice(0, 19)}${frac}Z`;
}

function mapArray(value: unknown, fn: Parser): unknown {
  if (Array.isArray(value)) return value.map((v) => mapArray(v, fn));
  return typeof value === 'string' ? fn(value) : value;
}

const arrayOf =
  (fn: Parser): Parser =>
  (text) =>
    mapArray(parseTextArray(text), fn);

/**
 * OID → parser overrides. pg's defaults turn date/timestamp into local-time Dates (wrong zone, lost
 * microseconds), numeric[] into floats and intervals into objects; everything else (int8 and numeric
 * as strings, json/jsonb parsed, arrays as arrays) is already faithful.
 */
const OVERRIDES: ReadonlyMap<number, Parser> = new Map<number, Parser>([
  [20, identity], // int8: pg's parser returns the same text after a regex test per value
  [114, parseJsonKeepingText], // json: parsed, its text kept for writing it back unchanged
  [3802, parseJsonKeepingText], // jsonb: likewise
  [1082, identity], // date
  [1114, (t) => t.replace(' ', 'T')], // timestamp: ISO-8601 local time, no zone invented
  [1184, timestamptzToIso], // timestamptz
  [1186, identity], // interval
  [1182, arrayOf(identity)], // date[]
  [1115, arrayOf((t) => t.replace(' ', 'T'))], // timestamp[]
  [1185, arrayOf(timestamptzToIso)], // timestamptz[]
  [1187, arrayOf(identity)], // interval[]
  [1231, arrayOf(identity)], // numeric[]: strings, no float rounding
]);

/** The per-connection type parsers (pg's `types` option). */
export const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if ((format ?? 'text') === 'text') {
      const own = OVERRIDES.get(oid);
      if (own) return own;
    }
    return pg.types.getTypeParser(oid, (format ?? 'text') as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** Client options shared by every backflow connection: our parsers, ISO dates, a name in pg_stat_activity. */
export function clientConfig(s: PostgresSettings): pg.ClientConfig {
  return {
    connectionString: s.url,
    types: typeParsers,
    application_name: 'backflow',
    options: '-c DateStyle=ISO',
    connectionTimeoutMillis: 15_000,
    keepAlive: true,
    ...(s.statementTimeoutMs !== undefined ? { statement_timeout: s.statementTimeoutMs } : {}),
  };
}

/**
 * A small pool. Every client gets an `error` listener so a connection dropped while checked out
 * surfaces through the query that was using it, not as an uncaught event.
 */
export function createPool(s: PostgresSettings, max = 4): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(s), max, idleTimeoutMillis: 30_000 });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Checks a client out of the pool, mapping connection failures to ProviderError. */
export async function acquire(pool: pg.Pool, s: PostgresSettings): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (e) {
    throw toProviderError(e, s.where, 'connect');
  }
}

/** A dedicated client outside any pool (the state lock holds one for its lifetime). */
export async function connectClient(s: PostgresSettings): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(s));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw toProviderError(e, s.where, 'connect');
  }
  return client;
}

/** For `release()`: true (destroy the client) when its connection may be broken. */
export function lostConnection(e: unknown): true | undefined {
  if (e === undefined) return undefined;
  const code = (e as { code?: unknown }).code;
  // A server error leaves the connection usable unless it is a connection-class error.
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57P)/.test(code)) return undefined;
  return true;
}

// --- errors ---------------------------------------------------------------------------------

/** The fields of a PostgreSQL ErrorResponse (pg's DatabaseError) we read. */
export interface PgServerError {
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

export function serverError(e: unknown): PgServerError | undefined {
  const err = e as { code?: unknown; severity?: unknown; message?: unknown };
  if (e instanceof Error && typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) && err.severity)
    return e as unknown as PgServerError;
  return undefined;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const LOST_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * A driver error as a ProviderError saying who must act. `during` says what we were doing:
 * a network failure while connecting is `connection_failed`, afterwards the connection was lost.
 */
export function toProviderError(e: unknown, where: string, during: 'connect' | 'query'): ProviderError {
  if (e instanceof ProviderError) return e;
  const db = serverError(e);
  const message = e instanceof Error ? e.message : String(e);
  if (db) {
    const code = db.code;
    const text = db.detail ? `${db.message} (${db.detail})` : db.message;
    if (code === '28P01' || code === '28000')
      return new ProviderError(`PostgreSQL at ${where} refused the login: ${text}`, {
        code: 'auth_failed',
        retryable: false,
        hint: 'check the user and password in the connection url (keep the password in ${env:NAME})',
        cause: e,
      });
    if (code === '3D000')
      return new ProviderError(`PostgreSQL at ${where}: ${text}`, {
        code: 'connection_failed',
        retryable: false,
        hint: 'check the database name at the end of the url, or create the database',
        cause: e,
      });
    if (code === '57014' && /statement timeout/i.test(db.message))
      return new ProviderError(`PostgreSQL at ${where}: ${text}`, {
        code: 'statement_timeout',
        retryable: true,
        hint: 'the query ran longer than statement_timeout: make it faster or raise statement_timeout',
        cause: e,
      });
    if (code.startsWith('57P') || code.startsWith('08'))
      return new ProviderError(`PostgreSQL at ${where}: the connection was lost: ${text}`, {
        code: 'connection_lost',
        retryable: true,
        cause: e,
      });
    if (code.startsWith('53') || code === '40001' || code === '40P01' || code === '55P03')
      return new ProviderError(`PostgreSQL at ${where}: ${text}`, {
        code: 'server_busy',
        retryable: true,
        cause: e,
      });
    return new ProviderError(`PostgreSQL at ${where}: ${text}`, {
      code: 'query_failed',
      retryable: false,
      ...(db.hint ? { hint: db.hint } : {}),
      cause: e,
    });
  }
  const sys = (e as { code?: unknown }).code;
  if (during === 'connect' && (typeof sys !== 'string' || NETWORK_CODES.has(sys) || /timeout/i.test(message)))
    return new ProviderError(`cannot connect to PostgreSQL at ${where}: ${message || String(sys)}`, {
      code: 'connection_failed',
      retryable: true,
      hint: 'is the server running and reachable at that host and port?',
      cause: e,
    });
  if (
    (typeof sys === 'string' && (LOST_CODES.has(sys) || NETWORK_CODES.has(sys))) ||
    /connection|terminated/i.test(message)
  )
    return new ProviderError(`PostgreSQL at ${where}: the connection was lost: ${message}`, {
      code: 'connection_lost',
      retryable: true,
      cause: e,
    });
  return new ProviderError(`PostgreSQL at ${where}: ${message}`, {
    code: 'query_failed',
    retryable: false,
    cause: e,
  });
}
