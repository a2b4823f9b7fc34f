import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { type ConnectionSettings, ProviderError, UserError } from '../sdk.js';
import { optionalTimeout, parseUrl } from '../sql/settings.js';

/** A SQL Server connection's settings, checked once when the session opens. */
export interface MssqlSettings {
  readonly server: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** May be a resolved secret: never put it in a message. */
  readonly password: string;
  readonly encrypt: boolean;
  readonly trustServerCertificate: boolean;
  readonly instanceName?: string;
  /** `host:port/database`, safe for messages. */
  readonly where: string;
  readonly statementTimeoutMs?: number;
}

const TRUE = new Set(['1', 'true', 'yes']);
const FALSE = new Set(['0', 'false', 'no']);

/**
 * `mssql://user:pass@host:1433/database?encrypt=true&trustServerCertificate=false&instanceName=X`
 * (`sqlserver://` too). Encryption is on by default, as in the driver.
 */
export function parseMssqlSettings(settings: ConnectionSettings, address: string): MssqlSettings {
  const { parsed } = parseUrl(settings, address, {
    needs: 'an mssql',
    example: 'mssql://user:${env:MSSQL_PASSWORD}@host:1433/database',
    use: 'mssql://user@host:1433/database',
  });
  if (parsed.protocol !== 'mssql:' && parsed.protocol !== 'sqlserver:') {
    throw new UserError(`${address}: \`url\` must start with mssql://, not ${parsed.protocol}//`);
  }
  const flag = (name: string, fallback: boolean): boolean => {
    const v = parsed.searchParams.get(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    throw new UserError(`${address}: \`${name}\` in the url must be true or false, not ${JSON.stringify(v)}`);
  };
  const server = parsed.hostname || 'localhost';
  const port = Number(parsed.port || '1433');
  const database = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, '')) || 'master';
  const instanceName = parsed.searchParams.get('instanceName') ?? undefined;
  return {
    server,
    port,
    database,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    encrypt: flag('encrypt', true),
    trustServerCertificate: flag('trustServerCertificate', false),
    ...(instanceName ? { instanceName } : {}),
    where: `${server}${instanceName ? `\\${instanceName}` : `:${port}`}/${database}`,
    ...optionalTimeout(settings.statement_timeout, address),
  };
}

// --- the driver (mssql over tedious; CommonJS without bundled types): what we use of it ---------

/** A result of `request.query`. */
export interface MssqlResult {
  readonly recordset?: Record<string, unknown>[];
  readonly rowsAffected: number[];
}

export interface MssqlRequest {
  input(name: string, value: unknown): MssqlRequest;
  query(sql: string): Promise<MssqlResult>;
  cancel(): void;
  toReadableStream(options?: { highWaterMark?: number }): Readable;
}

export interface MssqlPool {
  connect(): Promise<MssqlPool>;
  close(): Promise<void>;
  request(): MssqlRequest;
  on(event: 'error', listener: (e: unknown) => void): void;
}

interface MssqlModule {
  ConnectionPool: new (config: Record<string, unknown>) => MssqlPool;
}

let driver: MssqlModule | undefined;

/** Loaded on first use: only a session of this provider pays for tedious. */
function mssql(): MssqlModule {
  driver ??= createRequire(import.meta.url)('mssql') as MssqlModule;
  return driver;
}

/**
 * A small pool, connected: a wrong address, login or database fails here with a hint. Dates
 * travel as UTC; no request timeout unless `statement_timeout` sets one.
 */
export async function connectPool(s: MssqlSettings): Promise<MssqlPool> {
  const pool = new (mssql().ConnectionPool)({
    server: s.server,
    port: s.port,
    database: s.database,
    user: s.user,
    password: s.password,
    connectionTimeout: 15_000,
    requestTimeout: s.statementTimeoutMs ?? 0,
    pool: { max: 4, min: 0, idleTimeoutMillis: 30_000 },
    options: {
      encrypt: s.encrypt,
      trustServerCertificate: s.trustServerCertificate,
      appName: 'backflow',
      useUTC: true,
      ...(s.instanceName ? { instanceName: s.instanceName } : {}),
    },
  });
  pool.on('error', () => undefined);
  try {
    await pool.connect();
  } catch (e) {
    await pool.close().catch(() => undefined);
    throw toProviderError(e, s, 'connect');
  }
  return pool;
}

/** A request with `@p1…@pN` bound to `params`. */
export function request(pool: MssqlPool, params: readonly unknown[] = []): MssqlRequest {
  const req = pool.request();
  params.forEach((value, i) => {
    req.input(`p${i + 1}`, value);
  });
  return req;
}

// --- errors ---------------------------------------------------------------------------------

/**
 * The SQL Server error inside a driver error: its number (`2627`) and text. The driver reports the
 * last error of a request and keeps the earlier ones in `precedingErrors`; the cause is the first
 * that is not 3621 ("The statement has been terminated.").
 */
export function serverError(e: unknown): { readonly number: number; readonly message: string } | undefined {
  if (!(e instanceof Error)) return undefined;
  const preceding = (e as { precedingErrors?: unknown }).precedingErrors;
  const all = [...(Array.isArray(preceding) ? preceding : []), e] as {
    number?: unknown;
    message?: unknown;
  }[];
  const numbered = all.filter((x) => typeof x?.number === 'number');
  const main = numbered.find((x) => x.number !== 3621) ?? numbered[0];
  if (main === undefined) return undefined;
  return { number: main.number as number, message: String(main.message ?? '') };
}

const AUTH_NUMBERS = new Set([18456, 18452, 18486, 18487, 18488]);
const BUSY_NUMBERS = new Set([1205, 1222, 40501, 40613, 49918, 49919, 49920, 10928, 10929]);

/** Replaces the password, wherever it appears, and the user info of any URL in `text`. */
export function redact(text: string, s: Pick<MssqlSettings, 'password'>): string {
  let out = text.replace(/(\w+:\/\/)[^/@\s]*@/g, '$1***@');
  if (s.password.length >= 3) out = out.replaceAll(s.password, '***');
  return out;
}

/**
 * A driver error as a ProviderError saying who must act. `during` says what we were doing: a network
 * failure while connecting is `connection_failed`, afterwards the connection was lost.
 */
export function toProviderError(e: unknown, s: MssqlSettings, during: 'connect' | 'query'): ProviderError {
  if (e instanceof ProviderError) return e;
  const where = s.where;
  const code = (e as { code?: unknown }).code;
  const server = serverError(e);
  const message = redact(server?.message ?? (e instanceof Error ? e.message : String(e)), s);
  if (code === 'ELOGIN' || (server && AUTH_NUMBERS.has(server.number)))
    return new ProviderError(`SQL Server at ${where} refused the login: ${message}`, {
      code: 'auth_failed',
      retryable: false,
      hint: `check the user and password in the connection url (keep the password in $\{env:NAME})`,
      cause: e,
    });
  if (server?.number === 4060)
    return new ProviderError(`SQL Server at ${where}: ${message}`, {
      code: 'connection_failed',
      retryable: false,
      hint: 'check the database name at the end of the url, and that the login may open it',
      cause: e,
    });
  if (code === 'ETIMEOUT' && during === 'query')
    return new ProviderError(`SQL Server at ${where}: ${message}`, {
      code: 'statement_timeout',
      retryable: true,
      hint: 'the query ran longer than statement_timeout: make it faster or raise statement_timeout',
      cause: e,
    });
  if (server && BUSY_NUMBERS.has(server.number))
    return new ProviderError(`SQL Server at ${where}: ${message}`, {
      code: 'server_busy',
      retryable: true,
      cause: e,
    });
  if (during === 'connect' || code === 'ESOCKET' || code === 'ECONNCLOSED' || code === 'EINSTLOOKUP') {
    const connecting = during === 'connect';
    return new ProviderError(
      connecting
        ? `cannot connect to SQL Server at ${where}: ${message}`
        : `SQL Server at ${where}: the connection was lost: ${message}`,
      {
        code: connecting ? 'connection_failed' : 'connection_lost',
        retryable: true,
        hint: `is the server running and reachable at ${where.split('/')[0]}? (encryption: add ?encrypt=false or ?trustServerCertificate=true to the url when the server has no trusted certificate)`,
        cause: e,
      },
    );
  }
  return new ProviderError(`SQL Server at ${where}: ${message}`, {
    code: 'query_failed',
    retryable: false,
    cause: e,
  });
}
