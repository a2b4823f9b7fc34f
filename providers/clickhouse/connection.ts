import {
  type ClickHouseClient,
  ClickHouseLogLevel,
  type ClickHouseSettings,
  createClient,
} from '@clickhouse/client';
import { type ConnectionSettings, ProviderError, UserError } from '../sdk.js';
import { optionalTimeout, parseUrl } from '../sql/settings.js';

/** A ClickHouse connection's settings, checked once when the session opens. */
export interface ClickhouseSettings {
  /** The HTTP interface's origin (`http://host:8123`), without credentials. */
  readonly origin: string;
  readonly username: string;
  /** May be a resolved secret: never put it in a message. */
  readonly password: string;
  readonly database: string;
  /** `host:port/database`, safe for messages. */
  readonly where: string;
  readonly statementTimeoutMs?: number;
}

/**
 * `clickhouse://user:pass@host:8123/db` (HTTP) or `clickhouses://…` (HTTPS, default port 8443). An
 * `http(s)://` URL of the HTTP interface is taken as it is. The database defaults to `default`.
 */
export function parseClickhouseSettings(settings: ConnectionSettings, address: string): ClickhouseSettings {
  const { parsed } = parseUrl(settings, address, {
    needs: 'a clickhouse',
    example: 'clickhouse://user:${env:CLICKHOUSE_PASSWORD}@host:8123/database',
    use: 'clickhouse://user@host:8123/database',
  });
  const secure =
    parsed.protocol === 'clickhouses:' ||
    parsed.protocol === 'https:' ||
    ['1', 'true'].includes(parsed.searchParams.get('secure') ?? '');
  if (!['clickhouse:', 'clickhouses:', 'http:', 'https:'].includes(parsed.protocol)) {
    throw new UserError(`${address}: \`url\` must start with clickhouse://, not ${parsed.protocol}//`, {
      hint: 'backflow talks to ClickHouse over its HTTP interface (port 8123, or 8443 with TLS)',
    });
  }
  const host = parsed.hostname || 'localhost';
  const port = parsed.port || (secure ? '8443' : '8123');
  const database = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, '')) || 'default';
  const origin = `${secure ? 'https' : 'http'}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  return {
    origin,
    username: decodeURIComponent(parsed.username) || 'default',
    password: decodeURIComponent(parsed.password),
    database,
    where: `${host}:${port}/${database}`,
    ...optionalTimeout(settings.statement_timeout, address),
  };
}

/**
 * Per-query settings every version since 18.x knows: 64-bit integers as JSON strings (no precision
 * lost in JavaScript numbers) and the statement timeout as `max_execution_time` (whole seconds).
 */
export function querySettings(s: ClickhouseSettings): ClickHouseSettings {
  return {
    output_format_json_quote_64bit_integers: 1,
    ...(s.statementTimeoutMs !== undefined
      ? { max_execution_time: Math.max(1, Math.ceil(s.statementTimeoutMs / 1000)) }
      : {}),
  };
}

/** An HTTP client for the session; the driver's own console logging is off (errors surface as ProviderError). */
export function createClickhouseClient(s: ClickhouseSettings): ClickHouseClient {
  return createClient({
    url: s.origin,
    username: s.username,
    password: s.password,
    database: s.database,
    application: 'backflow',
    // The HTTP timeout backs up max_execution_time, which the server enforces itself.
    request_timeout: s.statementTimeoutMs !== undefined ? s.statementTimeoutMs + 5_000 : 300_000,
    max_open_connections: 4,
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** Checks that the server answers, accepts the login and has the database. */
export async function ping(
  client: ClickHouseClient,
  s: ClickhouseSettings,
  signal?: AbortSignal,
): Promise<void> {
  try {
    const rs = await client.query({
      query: 'SELECT 1 AS ok',
      format: 'JSONEachRow',
      ...(signal ? { abort_signal: signal } : {}),
    });
    await rs.json();
  } catch (e) {
    if (signal?.aborted) throw e;
    throw toProviderError(e, s, 'connect');
  }
}

// --- statements -----------------------------------------------------------------------------

/**
 * A model's single statement without its trailing semicolon and comments (the HTTP interface takes
 * exactly one; several are left for the server to refuse).
 */
export function trimStatement(sql: string): string {
  const statements = splitStatements(sql);
  return statements.length === 1 ? statements[0]! : sql.replace(/[\s;]+$/, '');
}

/**
 * Splits SQL text into statements at `;` outside quotes (`'…'`, `"…"`, `` `…` ``, with backslash
 * escapes and doubled quotes) and comments (`-- …`, `/* … *\/`). Statements holding only whitespace
 * and comments are dropped. ClickHouse's HTTP interface runs one statement per request.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let meaningful = false;
  let i = 0;
  const push = (end: number) => {
    if (meaningful) out.push(sql.slice(start, end).trim());
    start = end + 1;
    meaningful = false;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      meaningful = true;
      i++;
      while (i < sql.length && sql[i] !== c) i += sql[i] === '\\' ? 2 : 1;
      i++; // past the closing quote (a doubled quote reopens at once)
    } else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? sql.length : nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (c === ';') {
      push(i);
      i++;
    } else {
      if (!/\s/.test(c)) meaningful = true;
      i++;
    }
  }
  push(sql.length);
  return out;
}

// --- errors ---------------------------------------------------------------------------------

/** A server exception: ClickHouse's numeric error code and its text. */
export interface ClickhouseServerError {
  readonly code: number;
  readonly message: string;
}

// 18.x: "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist., e.what() = DB::Exception"
// 20+:  "Code: 60. DB::Exception: Table x does not exist. (UNKNOWN_TABLE) (version 23.8.1.1)"
const SERVER_TEXT =
  /^Code: (\d+)[.,]\s*(?:e\.displayText\(\) = )?(?:DB::Exception: )?([\s\S]*?)(?:, e\.what\(\) = DB::Exception)?\s*$/;

/** The server's exception inside a driver error, if that is what it is. */
export function serverError(e: unknown): ClickhouseServerError | undefined {
  if (!(e instanceof Error)) return undefined;
  const m = SERVER_TEXT.exec(e.message.trim());
  if (m?.[1] !== undefined) return { code: Number(m[1]), message: (m[2] ?? '').trim() };
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && /^\d+$/.test(code)) return { code: Number(code), message: e.message };
  return undefined;
}

const AUTH_CODES = new Set([192, 193, 194, 195, 516]);
const BUSY_CODES = new Set([202, 241, 252, 209, 210, 394, 999]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const LOST_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** Replaces the password, wherever it appears, and the user info of any URL in `text`. */
export function redact(text: string, s: Pick<ClickhouseSettings, 'password'>): string {
  let out = text.replace(/(\w+:\/\/)[^/@\s]*@/g, '$1***@');
  if (s.password.length >= 3) out = out.replaceAll(s.password, '***');
  return out;
}

/**
 * A driver error as a ProviderError saying who must act. `during` says what we were doing: a network
 * failure while connecting is `connection_failed`, afterwards the connection was lost.
 */
export function toProviderError(
  e: unknown,
  s: ClickhouseSettings,
  during: 'connect' | 'query',
): ProviderError {
  if (e instanceof ProviderError) return e;
  const where = s.where;
  const server = serverError(e);
  if (server) {
    const text = redact(server.message, s);
    if (AUTH_CODES.has(server.code))
      return new ProviderError(`ClickHouse at ${where} refused the login: ${text}`, {
        code: 'auth_failed',
        retryable: false,
        hint: `check the user and password in the connection url (keep the password in $\{env:NAME})`,
        cause: e,
      });
    if (server.code === 81 && during === 'connect')
      return new ProviderError(`ClickHouse at ${where}: ${text}`, {
        code: 'connection_failed',
        retryable: false,
        hint: 'check the database name at the end of the url, or create the database',
        cause: e,
      });
    if (server.code === 159)
      return new ProviderError(`ClickHouse at ${where}: ${text}`, {
        code: 'statement_timeout',
        retryable: true,
        hint: 'the query ran longer than statement_timeout (max_execution_time): make it faster or raise statement_timeout',
        cause: e,
      });
    if (BUSY_CODES.has(server.code))
      return new ProviderError(`ClickHouse at ${where}: ${text}`, {
        code: 'server_busy',
        retryable: true,
        cause: e,
      });
    return new ProviderError(`ClickHouse at ${where}: ${text}`, {
      code: 'query_failed',
      retryable: false,
      ...(server.code === 48
        ? { hint: 'mutations (ALTER TABLE … UPDATE/DELETE) need a MergeTree-family table' }
        : {}),
      cause: e,
    });
  }
  const message = redact(e instanceof Error ? e.message : String(e), s);
  const sys = (e as { code?: unknown }).code;
  if (/^timeout error/i.test(message))
    return new ProviderError(`ClickHouse at ${where}: no answer within the request timeout`, {
      code: 'statement_timeout',
      retryable: true,
      hint: 'the server did not answer in time: raise statement_timeout, or check the server load',
      cause: e,
    });
  if (typeof sys === 'string' && NETWORK_CODES.has(sys))
    return new ProviderError(
      during === 'connect'
        ? `cannot connect to ClickHouse at ${where}: ${message}`
        : `ClickHouse at ${where}: the connection was lost: ${message}`,
      {
        code: during === 'connect' ? 'connection_failed' : 'connection_lost',
        retryable: true,
        hint: `is the server running and its HTTP interface reachable at ${where.split('/')[0]}? (HTTP port 8123 by default, not the native 9000)`,
        cause: e,
      },
    );
  if ((typeof sys === 'string' && LOST_CODES.has(sys)) || /socket hang up|aborted/i.test(message))
    return new ProviderError(`ClickHouse at ${where}: the connection was lost: ${message}`, {
      code: during === 'connect' ? 'connection_failed' : 'connection_lost',
      retryable: true,
      hint: `is the HTTP interface at ${where.split('/')[0]} reachable? (HTTP port 8123 by default, not the native 9000)`,
      cause: e,
    });
  return new ProviderError(`ClickHouse at ${where}: ${message}`, {
    code: during === 'connect' ? 'connection_failed' : 'query_failed',
    retryable: false,
    ...(during === 'connect' ? { hint: `is ${where.split('/')[0]} ClickHouse's HTTP interface?` } : {}),
    cause: e,
  });
}
