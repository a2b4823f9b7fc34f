/**
 * The agent's table (store migration 4), the same shape on SQLite and PostgreSQL.
 *
 * `agent_leases`: one row per piece of work that must run on one agent at a time (`mapping:NAME`,
 * `integration:NAME`, `segments:refresh`). `holder` names the agent (host, pid namespace, pid and a
 * random part); `expires_at` is milliseconds since the epoch by the *database's* clock, so agents on
 * machines whose clocks disagree still agree on who holds what. A holder renews its lease while it
 * works; an agent that dies stops renewing and another takes the lease once it has expired.
 * `run_id` is the sync run the holder is executing, for `/healthz` and for recovery messages.
 */
export const agentMigration = {
  version: 4,
  name: 'agent: leases',
  sqlite: `
    CREATE TABLE agent_leases (
      name        TEXT PRIMARY KEY,
      holder      TEXT NOT NULL,
      acquired_at INTEGER NOT NULL,
      expires_at  INTEGER NOT NULL,
      run_id      TEXT
    ) WITHOUT ROWID;
  `,
  postgres: `
    CREATE TABLE agent_leases (
      name        text PRIMARY KEY,
      holder      text NOT NULL,
      acquired_at bigint NOT NULL,
      expires_at  bigint NOT NULL,
      run_id      text
    );
  `,
} as const;
