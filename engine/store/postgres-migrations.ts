import type pg from 'pg';
import { BugError, UserError } from '../errors.js';
import { agentMigration } from './features/agent.js';
import { alertsMigration } from './features/alerts.js';
import { segmentsDeliveredMigration, segmentsMigration } from './features/segments.js';

/** One schema change of the PostgreSQL store, applied once, in version order. */
export interface PgMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * The PostgreSQL store's schema, as an append-only list: add a change at the end with the next
 * version; never edit or reorder one that has shipped. Table names are the SQLite store's
 * (engine/store/migrations.ts), so a reader who knows one knows both.
 *
 * Why the shapes: keys are `COLLATE "C"` so that key order (unseenKeys pages by key) is byte order
 * on every server, as it is in SQLite, and the B-trees compare bytes instead of locale rules.
 * `run_keys` is a run's working set: UNLOGGED, because it is rewritten by every sync and worthless
 * after a crash (the run it belongs to is abandoned anyway); a server crash empties it, nothing else.
 * Run bodies and payloads are `json` (kept as text, any string escape allowed), not jsonb.
 */
export const pgMigrations: readonly PgMigration[] = [
  {
    version: 1,
    name: 'runs, snapshots, working sets, pending records, meta',
    sql: `
      CREATE TABLE runs (
        id          text COLLATE "C" PRIMARY KEY,
        mapping     text NOT NULL,
        model       text NOT NULL,
        source      text NOT NULL,
        destination text NOT NULL,
        action      text NOT NULL,
        status      text NOT NULL,
        trigger     text NOT NULL,
        started_at  timestamptz NOT NULL,
        finished_at timestamptz,
        body        json NOT NULL
      );
      CREATE INDEX runs_started ON runs (started_at);
      CREATE INDEX runs_mapping_started ON runs (mapping, started_at);
      CREATE INDEX runs_status ON runs (status);

      CREATE TABLE run_records (
        seq     bigserial PRIMARY KEY,
        run_id  text NOT NULL,
        key     text NOT NULL,
        change  text NOT NULL,
        status  text NOT NULL,
        code    text,
        message text,
        payload json
      );
      CREATE INDEX run_records_run ON run_records (run_id, seq);
      CREATE INDEX run_records_run_status ON run_records (run_id, status, seq);

      CREATE TABLE snapshots (
        mapping text NOT NULL,
        key     text COLLATE "C" NOT NULL,
        hash    text NOT NULL,
        PRIMARY KEY (mapping, key)
      );

      CREATE TABLE stages (
        id     bigserial PRIMARY KEY,
        run_id text NOT NULL UNIQUE
      );

      CREATE UNLOGGED TABLE run_keys (
        stage   bigint NOT NULL,
        key     text COLLATE "C" NOT NULL,
        outcome text,
        hash    text,
        PRIMARY KEY (stage, key)
      );

      CREATE TABLE pending (
        mapping         text NOT NULL,
        key             text COLLATE "C" NOT NULL,
        change          text NOT NULL,
        hash            text,
        first_failed_at text NOT NULL,
        last_failed_at  text NOT NULL,
        attempts        integer NOT NULL,
        code            text NOT NULL,
        message         text NOT NULL,
        expired         boolean NOT NULL DEFAULT false,
        PRIMARY KEY (mapping, key)
      );

      CREATE TABLE meta (
        key   text PRIMARY KEY,
        value text NOT NULL
      );
    `,
  },
  { version: 2, name: segmentsMigration.name, sql: segmentsMigration.postgres },
  { version: alertsMigration.version, name: alertsMigration.name, sql: alertsMigration.postgres },
  { version: agentMigration.version, name: agentMigration.name, sql: agentMigration.postgres },
  {
    version: 5,
    name: 'run records in chunks',
    sql: `
      CREATE TABLE run_record_chunks (
        run_id  text COLLATE "C" NOT NULL,
        seq     integer NOT NULL,
        count   integer NOT NULL,
        records json NOT NULL,
        PRIMARY KEY (run_id, seq)
      );
    `,
  },
  segmentsDeliveredMigration.postgres,
];

/** Arbitrary but fixed: the transaction-scoped advisory lock that serialises migrations. */
const MIGRATION_LOCK = 7_465_001;

/**
 * Applies the migrations the database has not seen, in one transaction holding an advisory lock,
 * so two agents starting at once cannot both apply one. Returns the versions applied.
 */
export async function applyPgMigrations(
  client: pg.ClientBase,
  list: readonly PgMigration[] = pgMigrations,
): Promise<number[]> {
  list.forEach((m, i) => {
    if (i > 0 && m.version <= list[i - 1]!.version)
      throw new BugError(
        `store migration ${m.name} has version ${m.version}, not after ${list[i - 1]!.version}`,
      );
  });
  const latest = list.at(-1)?.version ?? 0;
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const have = Math.max(0, ...done);
    if (have > latest) {
      throw new UserError(
        `the runtime store has schema version ${have}, newer than this backflow knows (${latest})`,
        {
          hint: 'upgrade backflow, or point `settings.store` at another database',
        },
      );
    }
    const applied: number[] = [];
    for (const m of list) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
