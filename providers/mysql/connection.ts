import mysql from 'mysql2';
import { type ConnectionSettings, ProviderError, UserError } from '../sdk.js';
import { optionalTimeout, parseUrl } from '../sql/settings.js';

/** A MySQL / MariaDB connection's settings, checked once when the session opens. */
export interface MysqlSettings {
  /** The connection URL (may hold a resolved password: never put it in a message). */
  readonly url: string;
  /** `host:port/database`, safe for messages. */
  readonly where: string;
  readonly statementTimeoutMs?: number;
}

export function parseMysqlSettings(settings: ConnectionSettings, address: string): MysqlSettings {
  const { url, parsed } = parseUrl(settings, address, {
    needs: 'a mysql',
    example: 'mysql://user:${env:MYSQL_PASSWORD}@host:3306/database',
    use: 'mysql://user@host:3306/database',
  });
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    throw new UserError(`${address}: \`url\` must start with mysql://, not ${parsed.protocol}//`);
  }
  const timeout = optionalTimeout(settings.statement_timeout, address, true);
  const db = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  return {
    // mysql2 reads only mysql:// URLs; mariadb:// is the same protocol.
    url: url.replace(/^mariadb:/, 'mysql:'),
    where: `${parsed.hostname || 'localhost'}:${parsed.port || '3306'}/${db}`,
    ...timeout,
  };
}

/**
 * Driver options: BIGINT and DECIMAL as exact strings, DATE/DATETIME/TIMESTAMP as the server's text
 * (no time zone shift through a JS Date), utf8mb4. JSON: MySQL's JSON type is parsed by mysql2;
 * MariaDB stores JSON as LONGTEXT but announces it in its extended column metadata (format=json),
 * which mysql2 reads, so a JSON column or a JSON function's result arrives as an object while a
 * plain LONGTEXT holding JSON-looking text stays a string.
 */
export function connectionOptions(s: MysqlSettings): mysql.PoolOptions {
  return {
    uri: s.url,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    charset: 'UTF8MB4_UNICODE_CI',
    connectTimeout: 15_000,
    enableKeepAlive: true,
  };
}

export type Flavor = 'mariadb' | 'mysql';

/** mysql2's own formatting, but only when there are values to put in. */
function formatOnlyWithValues(sql: string, values: unknown): string {
  return Array.isArray(values) && values.length > 0 ? mysql.format(sql, values) : sql;
}

/**
 * What a pool's connections are for. `read`: model queries, the session as the server sets it up.
 * `write`: destination loads, whose SQL backflow writes itself: backslash escapes on (no
 * NO_BACKSLASH_ESCAPES, no ANSI_QUOTES), strict mode so a bad value fails instead of being
 * truncated, and UTC so an ISO timestamp with a zone lands in a TIMESTAMP column unshifted.
 * `script`: connector SQL, several statements per call.
 */
export type PoolRole = 'read' | 'write' | 'script';

/** A pool plus what we learnt about the server on the first connection. */
export class MysqlPool {
  readonly pool: mysql.Pool;
  #flavor: Flavor | undefined;
  readonly #ready = new WeakSet<object>();

  constructor(
    readonly settings: MysqlSettings,
    private readonly role: PoolRole = 'read',
  ) {
    this.pool = mysql.createPool({
      ...connectionOptions(settings),
      multipleStatements: role === 'script',
      // Connector SQL is rendered and escaped by backflow and sent without parameters: skip mysql2's
      // scan of every statement for `?` placeholders (a rendered 500-profile batch is long).
      ...(role === 'script' ? { queryFormat: formatOnlyWithValues } : {}),
      connectionLimit: role === 'read' ? 4 : 2,
      maxIdle: 2,
      idleTimeout: 30_000,
    });
    // A connection dropped while idle must not crash the process; the next query reconnects.
    this.pool.on('connection', (c) => c.on('error', () => undefined));
  }

  get flavor(): Flavor {
    return this.#flavor ?? 'mysql';
  }

  /** Checks a connection out, setting the session up the first time it is used. */
  async acquire(): Promise<mysql.PoolConnection> {
    let conn: mysql.PoolConnection;
    try {
      conn = await new Promise<mysql.PoolConnection>((resolve, reject) =>
        this.pool.getConnection((err, c) => (err ? reject(err) : resolve(c))),
      );
    } catch (e) {
      throw toProviderError(e, this.settings.where, 'connect');
    }
    if (!this.#ready.has(conn)) {
      try {
        await this.setUp(conn);
      } catch (e) {
        conn.destroy();
        throw toProviderError(e, this.settings.where, 'connect');
      }
      this.#ready.add(conn);
    }
    return conn;
  }

  private async setUp(conn: mysql.PoolConnection): Promise<void> {
    const [row] = await query<{ v: string; m: string }[]>(
      conn,
      'SELECT VERSION() AS v, @@SESSION.sql_mode AS m',
    );
    this.#flavor = /mariadb/i.test(row?.v ?? '') ? 'mariadb' : 'mysql';
    const set: string[] = [];
    const ms = this.settings.statementTimeoutMs;
    if (ms !== undefined) {
      // MariaDB: every statement, in seconds. MySQL: read-only SELECTs, in milliseconds.
      set.push(
        this.#flavor === 'mariadb' ? `max_statement_time = ${ms / 1000}` : `max_execution_time = ${ms}`,
      );
    }
    if (this.role === 'write') {
      const modes = (row?.m ?? '')
        .split(',')
        .filter((m) => m && !['NO_BACKSLASH_ESCAPES', 'ANSI_QUOTES', 'ANSI'].includes(m));
      if (!modes.includes('STRICT_ALL_TABLES') && !modes.includes('STRICT_TRANS_TABLES'))
        modes.push('STRICT_ALL_TABLES');
      set.push(`sql_mode = '${modes.join(',')}'`, "time_zone = '+00:00'");
    }
    if (set.length) await query(conn, `SET SESSION ${set.join(', ')}`);
  }

  /**
   * Lifts the server-side statement timeout from one connection (it is set again the next time the
   * connection is checked out). A streamed query keeps running on the server while backflow loads
   * what it read, so there the timeout is kept by the caller, per batch, with `killQuery`.
   */
  async lift(conn: mysql.PoolConnection): Promise<void> {
    if (this.settings.statementTimeoutMs === undefined) return;
    this.#ready.delete(conn);
    await query(
      conn,
      `SET SESSION ${this.flavor === 'mariadb' ? 'max_statement_time' : 'max_execution_time'} = 0`,
    );
  }

  /** Stops the statement running on connection `threadId` (the connection itself stays). */
  async killQuery(threadId: number): Promise<void> {
    const conn = await this.acquire();
    try {
      await query(conn, `KILL QUERY ${Math.trunc(threadId)}`);
    } finally {
      conn.release();
    }
  }

  end(): Promise<void> {
    return new Promise((resolve) => this.pool.end(() => resolve()));
  }
}

/** One statement on a callback connection, as a promise of its rows (or result header). */
export function query<T = unknown>(conn: mysql.Connection | mysql.PoolConnection, sql: string): Promise<T> {
  return new Promise<T>((resolve, reject) =>
    conn.query(sql, (err: unknown, rows: unknown) => (err ? reject(err) : resolve(rows as T))),
  );
}

/** `release()` for a healthy connection, `destroy()` for one whose state is unknown. */
export function giveBack(conn: mysql.PoolConnection, broken: unknown): void {
  if (broken === undefined || isServerError(broken)) conn.release();
  else conn.destroy();
}

// --- errors ---------------------------------------------------------------------------------

/** The fields of a MySQL error packet mysql2 puts on its errors. */
export interface MysqlServerError {
  readonly errno: number;
  readonly sqlMessage: string;
  readonly sqlState?: string;
  readonly fatal?: boolean;
}

export function serverError(e: unknown): MysqlServerError | undefined {
  const err = e as Partial<MysqlServerError>;
  return typeof err?.errno === 'number' && typeof err.sqlMessage === 'string' && !err.fatal
    ? (err as MysqlServerError)
    : undefined;
}

function isServerError(e: unknown): boolean {
  const db = serverError(e);
  return db !== undefined && !LOST_ERRNOS.has(db.errno);
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const LOST_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
]);
// Server shutdown, connection killed (MariaDB 1927, MySQL 1053/2013), query interrupted by KILL (1317).
const LOST_ERRNOS = new Set([1053, 1317, 1927, 2006, 2013, 4031]);
// Too many connections, lock wait timeout, deadlock.
const BUSY_ERRNOS = new Set([1040, 1205, 1213]);
// MariaDB: max_statement_time exceeded; MySQL: max_execution_time exceeded.
const TIMEOUT_ERRNOS = new Set([1969, 3024]);

/**
 * A driver error as a ProviderError saying who must act. `during` says what we were doing:
 * a network failure while connecting is `connection_failed`, afterwards the connection was lost.
 */
export function toProviderError(e: unknown, where: string, during: 'connect' | 'query'): ProviderError {
  if (e instanceof ProviderError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown }).code;
  const errno = (e as { errno?: unknown }).errno;
  const serverMessage = (e as { sqlMessage?: unknown }).sqlMessage;
  const text = typeof serverMessage === 'string' ? serverMessage : message;
  if (errno === 1045 || errno === 1044 || errno === 1698)
    return new ProviderError(`MySQL at ${where} refused the login: ${text}`, {
      code: 'auth_failed',
      retryable: false,
      hint: 'check the user and password in the connection url (keep the password in ${env:NAME}) and the user’s grants',
      cause: e,
    });
  if (errno === 1049)
    return new ProviderError(`MySQL at ${where}: ${text}`, {
      code: 'connection_failed',
      retryable: false,
      hint: 'check the database name at the end of the url, or create the database',
      cause: e,
    });
  if (typeof errno === 'number' && TIMEOUT_ERRNOS.has(errno))
    return new ProviderError(`MySQL at ${where}: ${text}`, {
      code: 'statement_timeout',
      retryable: true,
      hint: 'the query ran longer than statement_timeout: make it faster or raise statement_timeout',
      cause: e,
    });
  if (typeof errno === 'number' && BUSY_ERRNOS.has(errno))
    return new ProviderError(`MySQL at ${where}: ${text}`, {
      code: 'server_busy',
      retryable: true,
      cause: e,
    });
  if (serverError(e) && !LOST_ERRNOS.has(errno as number))
    return new ProviderError(`MySQL at ${where}: ${text}`, {
      code: 'query_failed',
      retryable: false,
      cause: e,
    });
  if (
    during === 'connect' &&
    (typeof code !== 'string' || NETWORK_CODES.has(code) || /timeout/i.test(message))
  )
    return new ProviderError(`cannot connect to MySQL at ${where}: ${message || String(code)}`, {
      code: 'connection_failed',
      retryable: true,
      hint: 'is the server running and reachable at that host and port?',
      cause: e,
    });
  const lost =
    (e as { fatal?: unknown }).fatal === true ||
    (typeof code === 'string' && (LOST_CODES.has(code) || NETWORK_CODES.has(code))) ||
    (typeof errno === 'number' && LOST_ERRNOS.has(errno));
  if (lost)
    return new ProviderError(`MySQL at ${where}: the connection was lost: ${text || String(code)}`, {
      code: 'connection_lost',
      retryable: true,
      cause: e,
    });
  return new ProviderError(`MySQL at ${where}: ${text}`, {
    code: 'query_failed',
    retryable: false,
    cause: e,
  });
}
