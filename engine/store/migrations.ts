import type { Database } from 'better-sqlite3';
import { BugError, UserError } from '../errors.js';
import { agentMigration } from './features/agent.js';
import { alertsMigration } from './features/alerts.js';
import { segmentsDeliveredMigration, segmentsMigration } from './features/segments.js';

/** One schema change of the SQLite store, applied once, in version order. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * The SQLite store's schema, as an append-only list: add a change at the end with the next
 * version; never edit or reorder one that has shipped (stores in the field have applied it).
 *
 * `snapshots` and `pending` are WITHOUT ROWID tables keyed by what every query seeks on: a sync
 * reads its snapshot in key order, and writes its outcomes back in key order. A run's outcomes
 * before the commit (`run_outcomes`) are not here: they live in the connection's temporary schema
 * (see sqlite.ts).
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, run records, snapshots, pending records, meta',
    sql: `
      CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        mapping     TEXT NOT NULL,
        model       TEXT NOT NULL,
        source      TEXT NOT NULL,
        destination TEXT NOT NULL,
        action      TEXT NOT NULL,
        status      TEXT NOT NULL,
        trigger     TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        body        TEXT NOT NULL
      );
      CREATE INDEX runs_started ON runs (started_at);
      CREATE INDEX runs_mapping_started ON runs (mapping, started_at);
      CREATE INDEX runs_status ON runs (status);

      CREATE TABLE run_records (
        seq     INTEGER PRIMARY KEY,
        run_id  TEXT NOT NULL,
        key     TEXT NOT NULL,
        change  TEXT NOT NULL,
        status  TEXT NOT NULL,
        code    TEXT,
        message TEXT,
        payload TEXT
      );
      CREATE INDEX run_records_run ON run_records (run_id);
      CREATE INDEX run_records_run_status ON run_records (run_id, status);

      CREATE TABLE snapshots (
        mapping TEXT NOT NULL,
        key     TEXT NOT NULL,
        hash    TEXT NOT NULL,
        PRIMARY KEY (mapping, key)
      ) WITHOUT ROWID;

      CREATE TABLE pending (
        mapping         TEXT NOT NULL,
        key             TEXT NOT NULL,
        change          TEXT NOT NULL,
        hash            TEXT,
        first_failed_at TEXT NOT NULL,
        last_failed_at  TEXT NOT NULL,
        attempts        INTEGER NOT NULL,
        code            TEXT NOT NULL,
        message         TEXT NOT NULL,
        expired         INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (mapping, key)
      ) WITHOUT ROWID;

      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  { version: 2, name: segmentsMigration.name, sql: segmentsMigration.sqlite },
  { version: alertsMigration.version, name: alertsMigration.name, sql: alertsMigration.sqlite },
  { version: agentMigration.version, name: agentMigration.name, sql: agentMigration.sqlite },
  {
    version: 5,
    name: 'run records in chunks',
    // One row per batch of a run's records (JSON array, in order); run_records keeps only the failed
    // and expired ones, indexed for drill-down. A million loaded records are a thousand rows, not a
    // million rows and two index entries each.
    sql: `
      CREATE TABLE run_record_chunks (
        run_id  TEXT NOT NULL,
        seq     INTEGER NOT NULL,
        count   INTEGER NOT NULL,
        records TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
      ) WITHOUT ROWID;
    `,
  },
  segmentsDeliveredMigration.sqlite,
];

/**
 * Applies the migrations `db` has not seen, all in one IMMEDIATE transaction so two processes
 * starting at once cannot both apply one. Returns the versions applied.
 */
export function applyMigrations(db: Database, list: readonly Migration[] = migrations): number[] {
  assertOrdered(list);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const seen = () => new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
  const current = () => Math.max(0, ...seen());
  const latest = list.at(-1)?.version ?? 0;
  // Fast path without the write lock; a store from a newer backflow still goes on to be refused.
  if (current() <= latest && list.every((m) => seen().has(m.version))) return [];

  return db
    .transaction(() => {
      const have = current();
      if (have > latest) {
        throw new UserError(
          `the runtime store has schema version ${have}, newer than this backflow knows (${latest})`,
          { hint: 'upgrade backflow, or point `settings.store` at another database' },
        );
      }
      const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
      const applied: number[] = [];
      const done = seen();
      for (const m of list) {
        if (done.has(m.version)) continue;
        db.exec(m.sql);
        record.run(m.version, m.name, new Date().toISOString());
        applied.push(m.version);
      }
      return applied;
    })
    .immediate();
}

/** Versions strictly increase (features own fixed versions: see engine/store/features/). */
function assertOrdered(list: readonly { version: number; name: string }[]): void {
  list.forEach((m, i) => {
    if (i > 0 && m.version <= list[i - 1]!.version)
      throw new BugError(
        `store migration ${m.name} has version ${m.version}, not after ${list[i - 1]!.version}`,
      );
  });
}
