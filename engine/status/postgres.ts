import type pg from 'pg';
import {
  acquire,
  createPool,
  type PostgresSettings,
  parsePostgresSettings,
  toProviderError,
} from '../../providers/postgres/connection.js';
import { dialect } from '../../providers/postgres/dialect.js';
import { createTablesOnce, lockKey } from '../state/postgres.js';
import { emptyStatus, withEntry } from './document.js';
import type {
  EntryKind,
  EntryUpdate,
  EntryValue,
  StatusDocument,
  StatusEntry,
  StatusStore,
} from './types.js';

interface EntryRow {
  readonly kind: EntryKind;
  readonly name: string;
  readonly entry: string;
}

/**
 * The status document in a table beside the postgres state (`<state table>_status`): one row per
 * entry (`kind`, `name`, `entry` as json), so agents updating different mappings touch different
 * rows. An update reads and replaces its row in one transaction under a transaction-scoped advisory
 * lock on that entry (the row may not exist yet, so a row lock alone would not serialise the first
 * two writers). It uses its own connections, never the state's advisory lock or its rows.
 */
export class PostgresStatusStore implements StatusStore {
  readonly description: string;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly settings: PostgresSettings,
    private readonly table: string,
    private readonly lockName: string,
  ) {
    this.description = `status table ${table} at ${settings.where}`;
  }

  /** Connects and creates the table when missing. */
  static async open(req: { url: string; table: string }): Promise<PostgresStatusStore> {
    const settings = parsePostgresSettings({ type: 'postgres', url: req.url }, 'settings.state');
    const pool = createPool(settings, 2);
    try {
      const client = await acquire(pool, settings);
      try {
        const schema =
          (await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s ?? 'public';
        const store = new PostgresStatusStore(
          pool,
          settings,
          dialect.quoteIdent(req.table),
          `backflow_status:${schema}.${req.table}`,
        );
        await store.createTable(client);
        return store;
      } finally {
        client.release();
      }
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw toProviderError(e, settings.where, 'connect');
    }
  }

  private async createTable(client: pg.PoolClient): Promise<void> {
    await createTablesOnce(client, this.table, [
      `CREATE TABLE IF NOT EXISTS ${this.table} (
          kind       text NOT NULL,
          name       text NOT NULL,
          entry      json NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (kind, name)
        )`,
    ]);
  }

  async read(): Promise<StatusDocument> {
    let rows: EntryRow[];
    try {
      rows = (
        await this.pool.query<EntryRow>(
          `SELECT kind, name, entry::text AS entry FROM ${this.table} ORDER BY kind, name`,
        )
      ).rows;
    } catch (e) {
      throw toProviderError(e, this.settings.where, 'query');
    }
    let doc = emptyStatus();
    for (const row of rows) {
      if (row.kind !== 'mapping' && row.kind !== 'segment_integration') continue;
      const value = JSON.parse(row.entry) as EntryValue<typeof row.kind>;
      doc = withEntry(doc, { kind: row.kind, name: row.name, value } as StatusEntry);
    }
    return doc;
  }

  async update<K extends EntryKind>(req: EntryUpdate<K>): Promise<void> {
    const client = await acquire(this.pool, this.settings);
    let broken: unknown;
    let computing = false;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [
        lockKey(`${this.lockName}:${req.kind}:${req.name}`).id,
      ]);
      const current = await client.query<{ entry: string }>(
        `SELECT entry::text AS entry FROM ${this.table} WHERE kind = $1 AND name = $2`,
        [req.kind, req.name],
      );
      const previous = current.rows[0] ? (JSON.parse(current.rows[0].entry) as EntryValue<K>) : undefined;
      computing = true;
      const value = req.update(previous);
      computing = false;
      await client.query(
        `INSERT INTO ${this.table} (kind, name, entry, updated_at) VALUES ($1, $2, $3::json, $4)
         ON CONFLICT (kind, name) DO UPDATE SET entry = EXCLUDED.entry, updated_at = EXCLUDED.updated_at`,
        [req.kind, req.name, JSON.stringify(value), value.updated_at],
      );
      await client.query('COMMIT');
    } catch (e) {
      broken = e;
      await client.query('ROLLBACK').catch(() => undefined);
      throw computing ? e : toProviderError(e, this.settings.where, 'query');
    } finally {
      client.release(broken === undefined ? undefined : true);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
