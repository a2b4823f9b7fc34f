/**
 * For segment integration tests: a config directory that is planned and applied for real (local
 * state), and a runtime store of either kind (a SQLite file, or a fresh database on the harness's
 * PostgreSQL server).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../../engine/config/index.js';
import { applyPlan } from '../../engine/plan/apply.js';
import { plan } from '../../engine/plan/plan.js';
import { enqueueApplyEffects } from '../../engine/segments/index.js';
import { LocalStateBackend } from '../../engine/state/local.js';
import type { PendingEffect, StateDocument } from '../../engine/state/types.js';
import { openStore } from '../../engine/store/index.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { freshDatabase } from '../harness/databases.js';

export type StoreKind = 'sqlite' | 'postgres';

/** The URL of a new, empty runtime store of `kind` for the config directory `dir`. */
export async function testStoreUrl(kind: StoreKind): Promise<string> {
  return kind === 'sqlite' ? 'sqlite:.backflow/store.db' : freshDatabase('postgres', 'seg_store');
}

/** A runtime store of `kind`, empty and migrated. */
export async function testStore(kind: StoreKind, dir: string): Promise<RuntimeStore> {
  return openStore({ url: await testStoreUrl(kind), configDir: dir });
}

export interface Applied {
  readonly state: StateDocument;
  readonly previous: StateDocument | null;
  readonly effects: readonly PendingEffect[];
}

/** A config directory whose `main.yaml` is rewritten and applied like `backflow apply` does. */
export class Workspace {
  readonly backend: LocalStateBackend;

  private constructor(readonly dir: string) {
    this.backend = new LocalStateBackend(join(dir, '.backflow/state.json'));
  }

  static async create(prefix = 'backflow-seg-'): Promise<Workspace> {
    return new Workspace(await mkdtemp(join(tmpdir(), prefix)));
  }

  /** Writes the config, plans and applies it; with a store, queues the apply's segment effects as `apply` does. */
  async apply(yaml: string, store?: RuntimeStore): Promise<Applied> {
    await writeFile(join(this.dir, 'main.yaml'), yaml);
    const r = await readConfig(this.dir);
    if (!r.config) throw new Error(`config errors: ${JSON.stringify(r.diagnostics, null, 2)}`);
    const previous = await this.backend.read();
    const p = plan({ config: r.config, state: previous });
    const applied = await applyPlan({ plan: p, backend: this.backend });
    if (store)
      await enqueueApplyEffects({ store, state: applied.state, previous, effects: applied.newEffects });
    return { state: applied.state, previous, effects: applied.newEffects };
  }

  path(name: string): string {
    return join(this.dir, name);
  }
}
