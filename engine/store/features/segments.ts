/**
 * The segment integrations' tables in the runtime store (migration 2), for SQLite and PostgreSQL.
 *
 * - `segment_events`: the durable queue, per integration, in `seq` order. A row is one clear or
 *   segment event, or a run of add/remove events of one enqueue (`profiles`, a JSON array of
 *   `count` profiles, of which the first `taken` were delivered): a queue of 100,000 additions is
 *   a few hundred rows, not 100,000.
 * - `segment_batches`: batches formed and not yet removed: which slices of which rows they
 *   hold, and their retry state. What lies past a queue's last batch waits for the next one. A
 *   batch that has `started_at` set while no process holds the queue's lease was interrupted: it
 *   runs again. Profiles leave the queue only with their delivered batch. Since migration 6 a
 *   delivered batch is first marked (`delivered`: its query-log row, as JSON), in the same
 *   transaction that forms the next batch; its events, its mark and its log row are then moved
 *   in bulk (every few dozen batches, and when a flush of the queue starts or ends). Readers
 *   treat a marked batch as gone.
 * - `segment_leases`: which process is flushing which queue (integration, segment), so two agents
 *   or an agent and `segments flush` never run one queue at once (order per profile).
 * - `segment_members`: the current membership of each segment (for resync and model diffs). A
 *   profile is JSON, or `#FIELD` for a profile that is its key field alone (the key, as text).
 * - `segment_queries`: one row per query run, successful or not (`segments stats`).
 * - `segment_effects`: apply effects already queued (enqueueing one twice is a no-op).
 *
 * Times are ISO-8601 UTC text in both stores, so they compare as text.
 */

/**
 * Migration 6 of both runtime stores: `segment_batches.delivered`. Deleting a delivered batch's
 * events (a few pages each: the row, its overflow pages, the free list, the index) in every
 * batch's own commit more than doubled the store's writes per batch; marking the batch touches
 * the one page the next batch is written to anyway.
 */
const deliveredMark = { version: 6, name: 'segment batches: delivered mark' } as const;
export const segmentsDeliveredMigration = {
  sqlite: { ...deliveredMark, sql: 'ALTER TABLE segment_batches ADD COLUMN delivered TEXT' },
  postgres: { ...deliveredMark, sql: 'ALTER TABLE segment_batches ADD COLUMN delivered text' },
} as const;

/** Migration 2 of both runtime stores (listed in engine/store/migrations.ts and postgres-migrations.ts). */
export const segmentsMigration = {
  version: 2,
  name: 'segment queues, batches, leases, membership, query log',
  sqlite: `
    CREATE TABLE segment_events (
      seq          INTEGER PRIMARY KEY AUTOINCREMENT,
      integration  TEXT NOT NULL,
      segment      TEXT NOT NULL,
      kind         TEXT NOT NULL,
      profiles     TEXT,
      count        INTEGER NOT NULL,
      taken        INTEGER NOT NULL DEFAULT 0,
      segment_id   INTEGER,
      segment_name TEXT,
      snapshot     TEXT,
      enqueued_at  TEXT NOT NULL
    );
    CREATE INDEX segment_events_queue ON segment_events (integration, segment, seq);

    CREATE TABLE segment_batches (
      id              INTEGER PRIMARY KEY AUTOINCREMENT,
      integration     TEXT NOT NULL,
      segment         TEXT NOT NULL,
      kind            TEXT NOT NULL,
      events          INTEGER NOT NULL,
      last_seq        INTEGER NOT NULL,
      last_to         INTEGER NOT NULL,
      slices          TEXT NOT NULL,
      created_at      TEXT NOT NULL,
      attempts        INTEGER NOT NULL DEFAULT 0,
      next_attempt_at TEXT,
      started_at      TEXT,
      last_error      TEXT,
      last_error_at   TEXT,
      alerted_at      TEXT
    );
    CREATE INDEX segment_batches_queue ON segment_batches (integration, segment, id);

    CREATE TABLE segment_leases (
      integration TEXT NOT NULL,
      segment     TEXT NOT NULL,
      owner       TEXT NOT NULL,
      expires_at  TEXT NOT NULL,
      PRIMARY KEY (integration, segment)
    ) WITHOUT ROWID;

    CREATE TABLE segment_members (
      segment    TEXT NOT NULL,
      key        TEXT NOT NULL,
      profile    TEXT NOT NULL,
      hash       TEXT NOT NULL,
      refresh    TEXT,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (segment, key)
    ) WITHOUT ROWID;

    CREATE TABLE segment_queries (
      id          INTEGER PRIMARY KEY AUTOINCREMENT,
      integration TEXT NOT NULL,
      segment     TEXT NOT NULL,
      kind        TEXT NOT NULL,
      at          TEXT NOT NULL,
      ok          INTEGER NOT NULL,
      profiles    INTEGER NOT NULL,
      duration_ms INTEGER NOT NULL,
      attempt     INTEGER NOT NULL,
      message     TEXT
    );
    CREATE INDEX segment_queries_at ON segment_queries (integration, at);

    CREATE TABLE segment_effects (
      id          TEXT PRIMARY KEY,
      enqueued_at TEXT NOT NULL
    ) WITHOUT ROWID;
  `,
  postgres: `
    CREATE TABLE segment_events (
      seq          bigserial PRIMARY KEY,
      integration  text NOT NULL,
      segment      text NOT NULL,
      kind         text NOT NULL,
      profiles     text,
      count        integer NOT NULL,
      taken        integer NOT NULL DEFAULT 0,
      segment_id   bigint,
      segment_name text,
      snapshot     text,
      enqueued_at  text NOT NULL
    );
    CREATE INDEX segment_events_queue ON segment_events (integration, segment, seq);

    CREATE TABLE segment_batches (
      id              bigserial PRIMARY KEY,
      integration     text NOT NULL,
      segment         text NOT NULL,
      kind            text NOT NULL,
      events          integer NOT NULL,
      last_seq        bigint NOT NULL,
      last_to         integer NOT NULL,
      slices          text NOT NULL,
      created_at      text NOT NULL,
      attempts        integer NOT NULL DEFAULT 0,
      next_attempt_at text,
      started_at      text,
      last_error      text,
      last_error_at   text,
      alerted_at      text
    );
    CREATE INDEX segment_batches_queue ON segment_batches (integration, segment, id);

    CREATE TABLE segment_leases (
      integration text NOT NULL,
      segment     text NOT NULL,
      owner       text NOT NULL,
      expires_at  text NOT NULL,
      PRIMARY KEY (integration, segment)
    );

    CREATE TABLE segment_members (
      segment    text NOT NULL,
      key        text COLLATE "C" NOT NULL,
      profile    text NOT NULL,
      hash       text NOT NULL,
      refresh    text,
      updated_at text NOT NULL,
      PRIMARY KEY (segment, key)
    );

    CREATE TABLE segment_queries (
      id          bigserial PRIMARY KEY,
      integration text NOT NULL,
      segment     text NOT NULL,
      kind        text NOT NULL,
      at          text NOT NULL,
      ok          integer NOT NULL,
      profiles    integer NOT NULL,
      duration_ms integer NOT NULL,
      attempt     integer NOT NULL,
      message     text
    );
    CREATE INDEX segment_queries_at ON segment_queries (integration, at);

    CREATE TABLE segment_effects (
      id          text PRIMARY KEY,
      enqueued_at text NOT NULL
    );
  `,
} as const;
