import type { Database } from 'better-sqlite3';
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

/** better-sqlite3 is synchronous: each call completes before the promise resolves. */
export class SqliteSql implements StoreSql {
  readonly dialect = 'sqlite' as const;
  private depth = 0;
  constructor(private readonly db: Database) {}

  async all<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const stmt = this.db.prepare(sql);
    const rows = stmt.all(...params.map(bindable)) as Record<string, unknown>[];
    return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))) as T[];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<{ changes: number }> {
    return { changes: this.db.prepare(sql).run(...params.map(bindable)).changes };
  }

  async transaction<T>(work: (tx: StoreSql) => Promise<T>): Promise<T> {
    if (this.depth > 0) return work(this);
    this.db.exec('BEGIN IMMEDIATE');
    this.depth++;
    try {
      const result = await work(this);
      this.db.exec('COMMIT');
      return result;
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.depth--;
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
