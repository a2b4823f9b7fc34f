import type { Statement } from 'better-sqlite3';
import { manifests } from '../manifests.js';
import type { ExecuteRequest, OpenRequest, Provider, Row, Session, SqlExecutor } from '../sdk.js';
import { openSqlite, type SqliteConnection, toProviderError } from './connection.js';
import { SqliteDestination } from './destination.js';
import { decodeRow, SqliteSource } from './source.js';

/**
 * Segment connector SQL. `execute` takes several statements in one call and runs them in one
 * transaction (text that opens its own transaction runs as written).
 */
class SqliteExecutor implements SqlExecutor {
  #changes: Statement | undefined;

  constructor(private readonly conn: SqliteConnection) {}

  async execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }> {
    req.signal?.throwIfAborted();
    const { db } = this.conn;
    this.#changes ??= db.prepare('SELECT total_changes()').pluck();
    const before = this.#changes.get() as number;
    try {
      try {
        db.transaction(() => db.exec(req.sql))();
      } catch (e) {
        // The text has its own BEGIN … COMMIT: ours was rolled back whole, so run it as written.
        if (!/cannot start a transaction within a transaction/.test((e as Error).message)) throw e;
        db.exec(req.sql);
      }
    } catch (e) {
      throw toProviderError(e, this.conn.where, 'the statement');
    }
    return { rowsAffected: (this.#changes.get() as number) - before };
  }

  async query(req: ExecuteRequest): Promise<readonly Row[]> {
    req.signal?.throwIfAborted();
    try {
      const stmt = this.conn.db.prepare(req.sql);
      if (!stmt.reader) {
        stmt.run();
        return [];
      }
      return (stmt.safeIntegers(true).all() as Record<string, unknown>[]).map(decodeRow);
    } catch (e) {
      throw toProviderError(e, this.conn.where, 'the query');
    }
  }
}

/**
 * `type: sqlite`: a model source, a destination (upsert, insert, update, delete, mirror) and a
 * segment connector on one database file (`path`, relative to the config directory).
 */
export const provider: Provider = {
  manifest: manifests.sqlite,
  async open(req: OpenRequest): Promise<Session> {
    req.signal?.throwIfAborted();
    const conn = openSqlite(req);
    return {
      source: new SqliteSource(conn),
      destination: new SqliteDestination(conn),
      sql: new SqliteExecutor(conn),
      close: async () => {
        if (conn.db.open) conn.db.close();
      },
    };
  },
};

export { openSqlite, type SqliteConnection } from './connection.js';
export { SqliteDestination } from './destination.js';
export { SqliteSource } from './source.js';
