import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database, Statement } from 'better-sqlite3';
import type pg from 'pg';

/**
 * Raw access to the runtime store's database for features that keep their own tables
 * (segment queues, notifications, agent leases). SQL is written once with `?` placeholders;
 * PostgreSQL gets them rewritten to `$n`. Per-dialect differences stay in the feature, keyed by
 * `dialect`.
 */
export interface StoreSql {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
  /** Runs `work` in one transaction. Keep it short: no network calls inside. */
  transaction<T>(work: (tx: StoreSql) => Promise<T>): Promise<T>;
}

/** `?` → `$1, $2, …` outside string literals. */
export function toPgPlaceholders(sql: string): string {
  let n = 0;
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote) {
      if (c === quote) quote = null;
      out += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      out += c;
    } else if (c === '?') out += `$${++n}`;
    else out += c;
  }
  return out;
}

function bindable(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return v === undefined ? null : v;
}

/** Prepared statements kept per SqliteSql (the most recently used; features use a few dozen texts). */
const STATEMENT_CACHE = 128;

/**
 * better-sqlite3 is synchronous and has one connection, so a transaction spans awaits of whoever
 * else runs meanwhile. Transactions are therefore serialised in this process, and a statement from
 * outside the open transaction (another task's await) waits until it ends instead of joining it.
 * Statements are prepared once per text and reused (parsing and planning a statement costs more
 * than running a small one).
 */
export class SqliteSql implements StoreSql {
  readonly dialect = 'sqlite' as const;
  private readonly inside = new AsyncLocalStorage<symbol>();
  private open: { token: symbol; done: Promise<void> } | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly statements = new Map<string, Statement>();
  constructor(private readonly db: Database) {}

  /**
   * Waits while a transaction of another task is open: what the caller then runs synchronously on the
   * connection (the sync engine's store methods) stays out of it.
   */
  async turn(): Promise<void> {
    while (this.open && this.inside.getStore() !== this.open.token) await this.open.done;
  }

  /** The prepared statement for `sql`, from the cache (least recently used texts leave first). */
  private statement(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (stmt) {
      this.statements.delete(sql);
    } else {
      stmt = this.db.prepare(sql);
      if (this.statements.size >= STATEMENT_CACHE)
        this.statements.delete(this.statements.keys().next().value as string);
    }
    this.statements.set(sql, stmt);
    return stmt;
  }

  async all<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    await this.turn();
    const rows = this.statement(sql).all(params.map(bindable)) as Record<string, unknown>[];
    for (const r of rows)
      for (const k in r) {
        const v = r[k];
        if (typeof v === 'bigint') r[k] = Number(v);
      }
    return rows as T[];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<{ changes: number }> {
    await this.turn();
    return { changes: this.statement(sql).run(params.map(bindable)).changes };
  }

  async transaction<T>(work: (tx: StoreSql) => Promise<T>): Promise<T> {
    if (this.open && this.inside.getStore() === this.open.token) return work(this); // nested: join it
    const previous = this.queue;
    let release!: () => void;
    const done = new Promise<void>((r) => {
      release = r;
    });
    this.queue = previous.then(() => done);
    await previous;
    const token = Symbol('transaction');
    this.open = { token, done };
    try {
      return await this.inside.run(token, async () => {
        this.db.exec('BEGIN IMMEDIATE');
        try {
          const result = await work(this);
          this.db.exec('COMMIT');
          return result;
        } catch (e) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw e;
        }
      });
    } finally {
      this.open = undefined;
      release();
    }
  }
}

/** A pool, or one client inside a transaction. */
export class PostgresSql implements StoreSql {
  readonly dialect = 'postgres' as const;
  constructor(private readonly db: pg.Pool | pg.PoolClient) {}

  async all<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.db.query(toPgPlaceholders(sql), params as unknown[])).rows as T[];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<{ changes: number }> {
    return { changes: (await this.db.query(toPgPlaceholders(sql), params as unknown[])).rowCount ?? 0 };
  }

  async transaction<T>(work: (tx: StoreSql) => Promise<T>): Promise<T> {
    if (!('totalCount' in this.db)) return work(this); // already inside one
    const client = await this.db.connect();
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await work(new PostgresSql(client));
      await client.query('COMMIT');
      return result;
    } catch (e) {
      broken = e;
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release(broken === undefined ? undefined : true);
    }
  }
}
