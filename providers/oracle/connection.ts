import { createRequire } from 'node:module';
import { type ConnectionSettings, ProviderError, UserError } from '../sdk.js';
import { optionalTimeout, parseUrl } from '../sql/settings.js';

/** An Oracle connection's settings, checked once when the session opens. */
export interface OracleSettings {
  readonly user: string;
  /** May be a resolved secret: never put it in a message. */
  readonly password: string;
  /** Easy Connect: `host:port/service_name`, or `tcps://host:port/service_name` with `?ssl=true`. */
  readonly connectString: string;
  /** `host:port/service`, safe for messages. */
  readonly where: string;
  readonly statementTimeoutMs?: number;
}

/** `oracle://user:pass@host:1521/service_name[?ssl=true]`. */
export function parseOracleSettings(settings: ConnectionSettings, address: string): OracleSettings {
  const { parsed } = parseUrl(settings, address, {
    needs: 'an oracle',
    example: 'oracle://user:${env:ORACLE_PASSWORD}@host:1521/service_name',
    use: 'oracle://user@host:1521/service_name',
  });
  if (parsed.protocol !== 'oracle:') {
    throw new UserError(`${address}: \`url\` must start with oracle://, not ${parsed.protocol}//`);
  }
  const service = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, ''));
  if (!service) {
    throw new UserError(`${address}: the oracle url names no service`, {
      hint: 'end the url with the service name: oracle://user@host:1521/FREEPDB1',
    });
  }
  const user = decodeURIComponent(parsed.username);
  if (!user)
    throw new UserError(`${address}: the oracle url names no user`, {
      hint: 'oracle://user@host:1521/service',
    });
  const host = parsed.hostname || 'localhost';
  const port = parsed.port || '1521';
  const ssl = ['1', 'true'].includes(parsed.searchParams.get('ssl') ?? '');
  return {
    user,
    password: decodeURIComponent(parsed.password),
    connectString: `${ssl ? 'tcps://' : ''}${host}:${port}/${service}`,
    where: `${host}:${port}/${service}`,
    ...optionalTimeout(settings.statement_timeout, address),
  };
}

// --- the driver (node-oracledb in Thin mode: pure JavaScript; no bundled types) ------------------

export interface OracleColumnMeta {
  readonly name: string;
  readonly dbTypeName?: string;
  readonly dbType?: unknown;
  readonly precision?: number;
  readonly scale?: number;
}

export interface OracleResultSet {
  getRows(count: number): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export interface OracleResult {
  readonly rows?: Record<string, unknown>[];
  readonly metaData?: OracleColumnMeta[];
  readonly rowsAffected?: number;
  readonly resultSet?: OracleResultSet;
}

export interface OracleBatchError {
  readonly offset: number;
  readonly message: string;
  readonly errorNum?: number;
  readonly code?: string;
}

export interface OracleConnection {
  callTimeout: number;
  execute(
    sql: string,
    binds?: readonly unknown[] | Readonly<Record<string, unknown>>,
    options?: Record<string, unknown>,
  ): Promise<OracleResult>;
  executeMany(
    sql: string,
    binds: readonly (readonly unknown[])[],
    options?: Record<string, unknown>,
  ): Promise<{ readonly batchErrors?: OracleBatchError[]; readonly rowsAffected?: number }>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  break(): Promise<void>;
  close(): Promise<void>;
}

export interface OraclePool {
  getConnection(): Promise<OracleConnection>;
  close(drainTime?: number): Promise<void>;
}

/** The constants and entry points we use. */
export interface OracleModule {
  createPool(config: Record<string, unknown>): Promise<OraclePool>;
  readonly OUT_FORMAT_OBJECT: unknown;
  readonly STRING: unknown;
  readonly BUFFER: unknown;
  readonly DB_TYPE_NUMBER: unknown;
  readonly DB_TYPE_VARCHAR: unknown;
  readonly DB_TYPE_CLOB: unknown;
  readonly DB_TYPE_NCLOB: unknown;
  readonly DB_TYPE_BLOB: unknown;
  readonly DB_TYPE_RAW: unknown;
  readonly DB_TYPE_DATE: unknown;
  readonly DB_TYPE_TIMESTAMP: unknown;
  readonly DB_TYPE_TIMESTAMP_TZ: unknown;
  readonly DB_TYPE_TIMESTAMP_LTZ: unknown;
}

let driver: OracleModule | undefined;

/** Loaded on first use: only a session of this provider pays for node-oracledb. */
export function oracledb(): OracleModule {
  driver ??= createRequire(import.meta.url)('oracledb') as OracleModule;
  return driver;
}

/**
 * Session settings that make values travel as text both ways without guessing: UTC, and ISO-8601
 * formats for dates and timestamps (fetched as text, bound as text, converted by these formats).
 */
export const SESSION_SQL = `ALTER SESSION SET TIME_ZONE = 'UTC' NLS_DATE_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS' NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.FF6' NLS_TIMESTAMP_TZ_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.FF6TZH:TZM' NLS_NUMERIC_CHARACTERS = '.,'`;

/** A small pool, tried once: a wrong address, login or service fails here with a hint. */
export async function connectPool(s: OracleSettings): Promise<OraclePool> {
  let pool: OraclePool;
  try {
    pool = await oracledb().createPool({
      user: s.user,
      password: s.password,
      connectString: s.connectString,
      poolMin: 0,
      poolMax: 4,
      poolIncrement: 1,
      connectTimeout: 15,
      sessionCallback: (conn: OracleConnection, _tag: string, done: (e?: unknown) => void) => {
        conn.execute(SESSION_SQL).then(
          () => done(),
          (e: unknown) => done(e),
        );
      },
    });
  } catch (e) {
    throw toProviderError(e, s, 'connect');
  }
  try {
    const conn = await pool.getConnection();
    await conn.close();
  } catch (e) {
    await pool.close(0).catch(() => undefined);
    throw toProviderError(e, s, 'connect');
  }
  return pool;
}

/** A pooled connection with the statement timeout applied. */
export async function acquire(pool: OraclePool, s: OracleSettings): Promise<OracleConnection> {
  let conn: OracleConnection;
  try {
    conn = await pool.getConnection();
  } catch (e) {
    throw toProviderError(e, s, 'connect');
  }
  conn.callTimeout = s.statementTimeoutMs ?? 0;
  return conn;
}

// --- errors ---------------------------------------------------------------------------------

const AUTH_CODES = new Set(['ORA-01017', 'ORA-28000', 'ORA-28001', 'ORA-01005', 'ORA-01045', 'ORA-28040']);
const CONNECT_CODES = new Set([
  'NJS-500',
  'NJS-501',
  'NJS-503',
  'NJS-510',
  'NJS-511',
  'NJS-518',
  'NJS-519',
  'ORA-12514',
  'ORA-12541',
  'ORA-12505',
  'ORA-12170',
  'ORA-12543',
  'ORA-12537',
  'ORA-03113',
  'ORA-03114',
  'ORA-03135',
]);
const TIMEOUT_CODES = new Set(['NJS-123', 'DPI-1067', 'ORA-01013', 'ORA-03156']);
const BUSY_CODES = new Set([
  'ORA-00060',
  'ORA-00054',
  'ORA-12516',
  'ORA-12519',
  'ORA-12520',
  'ORA-00018',
  'ORA-00020',
]);

/** `ORA-01017` from a driver error (its `code`, or the message prefix). */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z]{3}-\d+$/.test(code)) return code;
  const m = /^([A-Z]{3}-\d{3,5}):/.exec(e instanceof Error ? e.message : String(e));
  return m?.[1];
}

/** Replaces the password, wherever it appears, and the user info of any URL in `text`. */
export function redact(text: string, s: Pick<OracleSettings, 'password'>): string {
  let out = text.replace(/(\w+:\/\/)[^/@\s]*@/g, '$1***@');
  if (s.password.length >= 3) out = out.replaceAll(s.password, '***');
  return out;
}

/**
 * A driver error as a ProviderError saying who must act. `during` says what we were doing: a network
 * failure while connecting is `connection_failed`, afterwards the connection was lost.
 */
export function toProviderError(e: unknown, s: OracleSettings, during: 'connect' | 'query'): ProviderError {
  if (e instanceof ProviderError) return e;
  const where = s.where;
  const code = errorCode(e) ?? '';
  // The driver appends a connection id and, on a new line, the socket error: keep the first line.
  const message = redact((e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '', s);
  if (AUTH_CODES.has(code))
    return new ProviderError(`Oracle at ${where} refused the login: ${message}`, {
      code: 'auth_failed',
      retryable: false,
      hint: `check the user and password in the connection url (keep the password in $\{env:NAME})`,
      cause: e,
    });
  if (TIMEOUT_CODES.has(code))
    return new ProviderError(`Oracle at ${where}: ${message}`, {
      code: 'statement_timeout',
      retryable: true,
      hint: 'the call ran longer than statement_timeout: make it faster or raise statement_timeout',
      cause: e,
    });
  if (BUSY_CODES.has(code))
    return new ProviderError(`Oracle at ${where}: ${message}`, {
      code: 'server_busy',
      retryable: true,
      cause: e,
    });
  if (CONNECT_CODES.has(code) || during === 'connect') {
    const connecting = during === 'connect';
    return new ProviderError(
      connecting
        ? `cannot connect to Oracle at ${where}: ${message}`
        : `Oracle at ${where}: the connection was lost: ${message}`,
      {
        code: connecting ? 'connection_failed' : 'connection_lost',
        retryable: !code.startsWith('ORA-125') || code === 'ORA-12541',
        hint:
          code === 'ORA-12514' || code === 'NJS-518'
            ? `the listener at ${where.split('/')[0]} does not know service ${where.split('/')[1] ?? ''}: check the service name at the end of the url`
            : `is the database running and its listener reachable at ${where.split('/')[0]}?`,
        cause: e,
      },
    );
  }
  return new ProviderError(`Oracle at ${where}: ${message}`, {
    code: 'query_failed',
    retryable: false,
    cause: e,
  });
}

// --- statements -----------------------------------------------------------------------------

const PLSQL =
  /^(BEGIN|DECLARE|CREATE\s+(OR\s+REPLACE\s+)?(EDITIONABLE\s+|NONEDITIONABLE\s+)?(PROCEDURE|FUNCTION|TRIGGER|PACKAGE|TYPE))\b/i;
const Q_CLOSE: Readonly<Record<string, string>> = { '[': ']', '{': '}', '(': ')', '<': '>' };

/**
 * The statements of connector SQL, each without its terminating `;` (Oracle runs one statement per
 * call and refuses the `;`). A PL/SQL block (`BEGIN`, `DECLARE`, `CREATE PROCEDURE` …) is one
 * statement and keeps its `;`. Splits only outside `'…'` (quotes doubled, no backslash escapes),
 * `q'[…]'`, `"…"` and comments.
 */
export function splitStatements(sql: string): string[] {
  const body = sql;
  if (PLSQL.test(stripLeadingComments(body))) return [body.trim()];
  const out: string[] = [];
  let start = 0;
  let meaningful = false;
  const push = (end: number) => {
    if (meaningful) out.push(body.slice(start, end).trim());
    start = end + 1;
    meaningful = false;
  };
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    const next = body[i + 1];
    if (
      (c === 'q' || c === 'Q') &&
      next === "'" &&
      body[i + 2] !== undefined &&
      !/[\w$#]/.test(body[i - 1] ?? ' ')
    ) {
      const open = body[i + 2]!;
      const close = `${Q_CLOSE[open] ?? open}'`;
      const end = body.indexOf(close, i + 3);
      meaningful = true;
      i = end === -1 ? body.length : end + 2;
    } else if (c === "'" || c === '"') {
      meaningful = true;
      const end = body.indexOf(c, i + 1);
      i = end === -1 ? body.length : end + 1; // a doubled quote reopens at once
    } else if (c === '-' && next === '-') {
      const nl = body.indexOf('\n', i);
      i = nl === -1 ? body.length : nl + 1;
    } else if (c === '/' && next === '*') {
      const end = body.indexOf('*/', i + 2);
      i = end === -1 ? body.length : end + 2;
    } else if (c === ';') {
      push(i);
      i++;
    } else {
      if (!/\s/.test(c)) meaningful = true;
      i++;
    }
  }
  push(body.length);
  return out;
}

function stripLeadingComments(sql: string): string {
  let s = sql.trimStart();
  for (;;) {
    if (s.startsWith('--')) s = s.slice(s.indexOf('\n') === -1 ? s.length : s.indexOf('\n') + 1).trimStart();
    else if (s.startsWith('/*'))
      s = s.slice(s.indexOf('*/') === -1 ? s.length : s.indexOf('*/') + 2).trimStart();
    else return s;
  }
}
