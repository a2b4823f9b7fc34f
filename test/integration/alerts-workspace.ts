// An applied backflow workspace on SQLite files for the alert tests: a warehouse table `people`,
// a destination table with a trigger that can reject rows, and the config given.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readConfig } from '../../engine/config/index.js';
import { applyPlan } from '../../engine/plan/apply.js';
import { plan } from '../../engine/plan/plan.js';
import { LocalStateBackend } from '../../engine/state/local.js';
import type { StateDocument } from '../../engine/state/types.js';
import { openStore } from '../../engine/store/index.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { afterRun } from '../../engine/sync/after-run.js';
import { runSync } from '../../engine/sync/run.js';
import type { SyncRun } from '../../engine/sync/types.js';

export const MAPPINGS = `
sources:
  wh: { type: sqlite, path: wh.db }
models:
  people: { source: wh, primary_key: id, sql: "select id, name from people" }
destinations:
  dest: { type: sqlite, path: dest.db }
mappings:
  people_to_dest:
    model: people
    destination: dest
    action: upsert
    table: people_copy
    key: id
    fields: { id: id, name: name }
  people_audit:
    model: people
    destination: dest
    action: upsert
    table: people_audit
    key: id
    fields: { id: id, name: name }
`;

export interface Workspace {
  readonly dir: string;
  readonly state: StateDocument;
  readonly store: RuntimeStore;
  readonly wh: Database.Database;
  readonly dest: Database.Database;
  /** The injectable clock every run (and so alerting) uses. */
  readonly clock: { now: Date };
  /** Lines the after-run subscribers logged. */
  readonly log: string[];
  /** One sync of `mapping` at the clock's time, then every after-run subscriber. */
  sync(mapping?: string): Promise<SyncRun>;
  /** Advances the clock. */
  advance(ms: number): void;
  close(): Promise<void>;
}

export async function workspace(alertsYaml: string): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-alerts-'));
  await writeFile(join(dir, 'main.yaml'), `${MAPPINGS}\n${alertsYaml}`);
  const wh = new Database(join(dir, 'wh.db'));
  wh.exec(`create table people (id integer primary key, name text);
           insert into people values (1, 'ada'), (2, 'grace'), (3, 'alan');`);
  const dest = new Database(join(dir, 'dest.db'));
  dest.exec(`
    create table people_copy (id text primary key, name text);
    create table people_audit (id text primary key, name text);
    create table chaos (reject_name text);
    create trigger reject_ins before insert on people_copy when new.name in (select reject_name from chaos)
      begin select raise(abort, 'rejected by the destination'); end;
    create trigger reject_upd before update on people_copy when new.name in (select reject_name from chaos)
      begin select raise(abort, 'rejected by the destination'); end;`);
  const { config, diagnostics } = await readConfig(dir);
  if (!config) throw new Error(`config invalid: ${JSON.stringify(diagnostics)}`);
  const backend = new LocalStateBackend(join(dir, 'state.json'));
  const { state } = await applyPlan({ plan: plan({ config, state: null }), backend });
  const store = await openStore({ url: 'sqlite:store.db', configDir: dir });
  const clock = { now: new Date('2026-03-02T09:00:00.000Z') };
  const log: string[] = [];
  return {
    dir,
    state,
    store,
    wh,
    dest,
    clock,
    log,
    async sync(mapping = 'people_to_dest') {
      const run = await runSync({
        mapping,
        state,
        configDir: dir,
        store,
        trigger: 'schedule',
        now: () => clock.now,
      });
      await afterRun({ run, state, store, configDir: dir, log: (l) => log.push(l) });
      return run;
    },
    advance(ms) {
      clock.now = new Date(clock.now.getTime() + ms);
    },
    async close() {
      wh.close();
      dest.close();
      await store.close();
    },
  };
}
