import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import {
  acquire,
  connectClient,
  createPool,
  type PostgresSettings,
  parsePostgresSettings,
  serverError,
  toProviderError,
} from '../../providers/postgres/connection.js';
import { dialect } from '../../providers/postgres/dialect.js';
import { LockHeldError, UserError } from '../errors.js';
import { parseState } from './local.js';
import { type LockHandle, type LockInfo, lockOwner, type StateBackend, type StateDocument } from './types.js';

/** How many applied documents the table keeps (the newest is the state; the others are history). */
const HISTORY = 100;

interface LockRow {
  readonly id: string;
  readonly who: string;
  readonly operation: string;
  readonly created: string;
  readonly backend_pid: number;
}

/**
 * State in a PostgreSQL table: one row per apply (`serial`, `lineage`, the document as jsonb), the
 * newest row is the state and the last HISTORY rows are kept as history.
 *
 * The lock is a session-level advisory lock (`pg_try_advisory_lock`) held on one dedicated
 * connection for as long as the lock lives; writes go through that same connection, so a write can
 * only succeed while the lock is really held. Who holds it, for what and since when is written to
 * `<table>_lock` so that a losing apply can name the holder. A crashed holder's connection closes and
 * the server drops the advisory lock with it: a leftover info row is then stale and ignored.
 *
 * `forceUnlock(id)`: when the holder's backend is gone only the info row is cleared; when it is still
 * alive (a hung apply, a stuck CI job) and its info row carries `id`, that backend is terminated with
 * pg_terminate_backend, which releases the lock; the holder's next write then fails, saying the lock
 * was lost, instead of overwriting what came after.
 */
export class PostgresStateBackend implements StateBackend {
  readonly description: string;
  readonly #held = new Map<string, pg.Client>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly settings: PostgresSettings,
    private readonly table: string,
    private readonly lockTable: string,
    /** The advisory lock key (a signed 64-bit integer as text) and its halves as pg_locks shows them. */
    private readonly key: { readonly id: string; readonly classid: string; readonly objid: string },
  ) {
    this.description = `postgres state table ${table} at ${settings.where}`;
  }

  /** Connects, creates the tables when missing, and returns the backend. */
  static async open(req: { url: string; table: string }): Promise<PostgresStateBackend> {
    const settings = parsePostgresSettings({ type: 'postgres', url: req.url }, 'settings.state');
    const pool = createPool(settings, 2);
    try {
      const client = await acquire(pool, settings);
      try {
        const schema =
          (await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s ?? 'public';
        const key = lockKey(`backflow_state:${schema}.${req.table}`);
        const backend = new PostgresStateBackend(
          pool,
          settings,
          dialect.quoteIdent(req.table),
          dialect.quoteIdent(`${req.table}_lock`),
          key,
        );
        await backend.createTables(client);
        return backend;
      } finally {
        client.release();
      }
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw toProviderError(e, settings.where, 'connect');
    }
  }

  private async createTables(client: pg.PoolClient): Promise<void> {
    await createTablesOnce(client, this.table, [
      `CREATE TABLE IF NOT EXISTS ${this.table} (
          id         bigserial PRIMARY KEY,
          lineage    text NOT NULL,
          serial     bigint NOT NULL,
          doc        jsonb NOT NULL,
          written_at timestamptz NOT NULL DEFAULT now(),
          written_by text NOT NULL,
          lock_id    text NOT NULL
        )`,
      `CREATE TABLE IF NOT EXISTS ${this.lockTable} (
          lock_key    bigint PRIMARY KEY,
          id          text NOT NULL,
          who         text NOT NULL,
          operation   text NOT NULL,
          created     timestamptz NOT NULL,
          backend_pid integer NOT NULL
        )`,
    ]);
  }

  async read(): Promise<StateDocument | null> {
    const res = await this.query<{ doc: string }>(
      `SELECT doc::text AS doc FROM ${this.table} ORDER BY id DESC LIMIT 1`,
    );
    const row = res.rows[0];
    return row ? parseState(row.doc, this.description) : null;
  }

  async lock(req: { operation: string; who?: string }): Promise<LockHandle> {
    const client = await connectClient(this.settings);
    let info: LockInfo;
    try {
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
        this.key.id,
      ]);
      if (!got.rows[0]?.ok) throw new LockHeldError(await this.holder(true), this.description);
      info = {
        id: randomUUID(),
        who: req.who ?? lockOwner(),
        operation: req.operation,
        created: new Date().toISOString(),
      };
      await client.query(
        `INSERT INTO ${this.lockTable} (lock_key, id, who, operation, created, backend_pid)
         VALUES ($1, $2, $3, $4, $5, pg_backend_pid())
         ON CONFLICT (lock_key) DO UPDATE SET id = EXCLUDED.id, who = EXCLUDED.who, operation = EXCLUDED.operation,
           created = EXCLUDED.created, backend_pid = EXCLUDED.backend_pid`,
        [this.key.id, info.id, info.who, info.operation, info.created],
      );
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e instanceof UserError ? e : toProviderError(e, this.settings.where, 'query');
    }
    this.#held.set(info.id, client);
    let released = false;
    return {
      info,
      release: async () => {
        if (released) return;
        released = true;
        this.#held.delete(info.id);
        try {
          await client.query(`DELETE FROM ${this.lockTable} WHERE lock_key = $1 AND id = $2`, [
            this.key.id,
            info.id,
          ]);
          const res = await client.query<{ ok: boolean }>('SELECT pg_advisory_unlock($1::bigint) AS ok', [
            this.key.id,
          ]);
          if (!res.rows[0]?.ok)
            throw new UserError(
              `the lock on ${this.description} was not held any more when it was released`,
              {
                hint: 'someone ran `backflow state unlock` meanwhile; check the state with `backflow show`',
              },
            );
        } catch (e) {
          // A connection that is gone took its advisory lock with it: nothing is left to release.
          if (e instanceof UserError) throw e;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
    };
  }

  async write(doc: StateDocument, lock: LockHandle): Promise<void> {
    const client = this.#held.get(lock.info.id);
    const lost = () =>
      new UserError(`the lock on ${this.description} was lost before writing`, {
        hint: 'someone ran `backflow state unlock` meanwhile; run the command again',
      });
    if (!client) throw lost();
    try {
      await client.query('BEGIN');
      const owner = await client.query<{ id: string }>(
        `SELECT id FROM ${this.lockTable} WHERE lock_key = $1 AND backend_pid = pg_backend_pid() FOR UPDATE`,
        [this.key.id],
      );
      if (owner.rows[0]?.id !== lock.info.id) throw lost();
      await client.query(
        `INSERT INTO ${this.table} (lineage, serial, doc, written_by, lock_id) VALUES ($1, $2, $3::jsonb, $4, $5)`,
        [doc.lineage, doc.serial, JSON.stringify(doc), lock.info.who, lock.info.id],
      );
      await client.query(
        `DELETE FROM ${this.table} WHERE id <= (SELECT id FROM ${this.table} ORDER BY id DESC OFFSET $1 LIMIT 1)`,
        [HISTORY],
      );
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (e instanceof UserError) throw e;
      if (!serverError(e) || /^(08|57P)/.test(serverError(e)?.code ?? '')) throw lost();
      throw toProviderError(e, this.settings.where, 'query');
    }
  }

  async currentLock(): Promise<LockInfo | null> {
    return this.holder(false);
  }

  /**
   * The holder of the lock, or null when nobody holds it. `waitForRow`: the lock was just seen
   * taken, so its holder is about to write the info row; wait briefly for it rather than answer
   * "unknown".
   */
  private async holder(waitForRow: true): Promise<LockInfo>;
  private async holder(waitForRow: false): Promise<LockInfo | null>;
  private async holder(waitForRow: boolean): Promise<LockInfo | null> {
    for (let attempt = 0; ; attempt++) {
      const { pid, row } = await this.inspect();
      if (pid === null && !waitForRow) return null;
      if (pid !== null && row && row.backend_pid === pid) return toInfo(row);
      if (attempt >= 20) {
        if (pid === null) return { id: 'unknown', who: 'unknown', operation: 'unknown', created: 'unknown' };
        return {
          id: `pid:${pid}`,
          who: `PostgreSQL backend ${pid}`,
          operation: 'unknown',
          created: 'unknown',
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The backend pid holding the advisory lock (null: free) and the info row, whoever wrote it. */
  private async inspect(): Promise<{ pid: number | null; row: LockRow | undefined }> {
    const res = await this.query<LockRow & { holder: number | null }>(
      `SELECT l.id, l.who, l.operation,
              -- the same text as JavaScript's toISOString(), which wrote it (no trailing zeros dropped)
              to_char(l.created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created,
              l.backend_pid, h.pid AS holder
         FROM (SELECT 1) AS one
         LEFT JOIN ${this.lockTable} AS l ON l.lock_key = $1
         LEFT JOIN (SELECT pid FROM pg_locks
                     WHERE locktype = 'advisory' AND granted AND objsubid = 1
                       AND classid = $2::oid AND objid = $3::oid
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS h ON true`,
      [this.key.id, this.key.classid, this.key.objid],
    );
    const r = res.rows[0];
    return { pid: r?.holder ?? null, row: r?.id == null ? undefined : r };
  }

  async forceUnlock(id: string): Promise<void> {
    const { pid, row } = await this.inspect();
    const rowIsHolder = pid !== null && row?.backend_pid === pid;
    const currentId = pid === null ? row?.id : rowIsHolder ? row?.id : `pid:${pid}`;
    if (currentId === undefined) throw new UserError(`${this.description} is not locked`);
    if (currentId !== id) {
      throw new UserError(`lock ID ${id} does not match the current lock ${currentId}`, {
        hint:
          row && (rowIsHolder || pid === null)
            ? `the lock is held by ${row.who} (${row.operation}) since ${row.created}`
            : undefined,
      });
    }
    if (pid !== null) {
      try {
        // Only the backend pg_locks shows holding our key, whose info row (or synthetic id) matched.
        const res = await this.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
        if (!res.rows[0]?.ok)
          throw new UserError(`could not end PostgreSQL backend ${pid}, which holds the lock`);
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(
          `could not end PostgreSQL backend ${pid}, which holds the lock: ${(e as Error).message}`,
          {
            hint: 'the state backend user needs to own that session or be granted pg_signal_backend',
            cause: e,
          },
        );
      }
      for (let i = 0; i < 100 && (await this.inspect()).pid === pid; i++)
        await new Promise((r) => setTimeout(r, 50));
    }
    if (row)
      await this.query(`DELETE FROM ${this.lockTable} WHERE lock_key = $1 AND id = $2`, [
        this.key.id,
        row.id,
      ]);
  }

  async close(): Promise<void> {
    for (const client of this.#held.values()) await client.end().catch(() => undefined);
    this.#held.clear();
    await this.pool.end();
  }

  private async query<R extends pg.QueryResultRow>(
    sql: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, values);
    } catch (e) {
      throw toProviderError(e, this.settings.where, 'query');
    }
  }
}

function toInfo(row: LockRow): LockInfo {
  return { id: row.id, who: row.who, operation: row.operation, created: row.created };
}

/**
 * A 64-bit advisory lock key from a name, plus the two 32-bit halves pg_locks shows for it
 * (classid: high, objid: low, both as unsigned oids).
 */
/**
 * Runs `CREATE TABLE IF NOT EXISTS` statements in one transaction serialised by an advisory lock on
 * `table`: two first writers racing on them would otherwise collide in pg_type.
 */
export async function createTablesOnce(
  client: pg.PoolClient,
  table: string,
  statements: readonly string[],
): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKey(`ddl:${table}`).id]);
    for (const sql of statements) await client.query(sql);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

export function lockKey(name: string): { id: string; classid: string; objid: string } {
  const n = createHash('sha256').update(name).digest().readBigInt64BE(0);
  const unsigned = BigInt.asUintN(64, n);
  return {
    id: n.toString(),
    classid: (unsigned >> 32n).toString(),
    objid: (unsigned & 0xffffffffn).toString(),
  };
}
