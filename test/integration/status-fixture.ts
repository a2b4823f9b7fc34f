// A config directory with a SQLite warehouse, a SQLite destination that can be made to reject
// records, and a file destination; applied, with a runtime store: real syncs for the status tests.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readConfig } from '../../engine/config/index.js';
import { applyPlan } from '../../engine/plan/apply.js';
import { plan } from '../../engine/plan/plan.js';
import { openStateBackend } from '../../engine/state/index.js';
import type { StateBackend, StateDocument } from '../../engine/state/types.js';
import { openStore } from '../../engine/store/index.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { afterRun } from '../../engine/sync/after-run.js';
import { runSync } from '../../engine/sync/run.js';
import type { SyncRun } from '../../engine/sync/types.js';

/** What the rejecting trigger says: a comma, quotes and a newline, for exports to get right. */
export const AWKWARD_MESSAGE = 'rejected, "bad" name\nsee the \'policy\'';

const CONFIG = `
sources:
  wh: { type: sqlite, path: wh.db }
models:
  people: { source: wh, primary_key: id, sql: "select id, name from people" }
destinations:
  dest: { type: sqlite, path: dest.db }
  log: { type: file, path: out/people.jsonl }
mappings:
  people_to_dest:
    model: people
    destination: dest
    action: upsert
    table: people_copy
    key: id
    fields: { id: id, name: name }
  people_to_log:
    model: people
    destination: log
    action: append
    fields: { name: name }
`;

export interface Workspace {
  readonly dir: string;
  readonly state: StateDocument;
  readonly backend: StateBackend;
  readonly store: RuntimeStore;
  readonly wh: Database.Database;
  readonly dest: Database.Database;
  /** What subscribers logged (warnings included). */
  readonly logs: string[];
  /** One sync of `mapping` followed by the after-run subscribers, as `backflow sync` does. */
  sync(mapping: string): Promise<SyncRun>;
  close(): Promise<void>;
}

/** `settings` YAML (e.g. a postgres state backend) goes in front of the config. */
export async function workspace(opts: { settings?: string } = {}): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-status-'));
  await writeFile(join(dir, 'main.yaml'), `${opts.settings ?? ''}\n${CONFIG}`);
  const wh = new Database(join(dir, 'wh.db'));
  wh.exec('create table people (id integer primary key, name text)');
  const dest = new Database(join(dir, 'dest.db'));
  dest.exec(`
    create table people_copy (id text primary key, name text);
    create trigger reject_bad before insert on people_copy when new.name like 'bad%'
      begin select raise(abort, '${AWKWARD_MESSAGE.replaceAll("'", "''")}'); end;
  `);
  const { config, diagnostics } = await readConfig(dir);
  if (!config) throw new Error(JSON.stringify(diagnostics));
  const backend = await openStateBackend(dir, config.doc.settings);
  const { state } = await applyPlan({ plan: plan({ config, state: null }), backend });
  const store = await openStore({ url: 'sqlite:.backflow/store.db', configDir: dir });
  const logs: string[] = [];
  return {
    dir,
    state,
    backend,
    store,
    wh,
    dest,
    logs,
    async sync(mapping) {
      const run = await runSync({ mapping, state, configDir: dir, store, trigger: 'manual' });
      await afterRun({ run, state, store, configDir: dir, log: (m) => logs.push(m) });
      return run;
    },
    async close() {
      wh.close();
      dest.close();
      await store.close();
      await backend.close();
    },
  };
}
