import { loadDocument } from '../config/load.js';
import type { BackflowConfig } from '../config/types.gen.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import type { SyncRun } from './types.js';

export interface AfterRunContext {
  readonly run: SyncRun;
  readonly state: StateDocument | null;
  readonly store: RuntimeStore;
  readonly configDir: string;
  /** One line for the person watching (stderr in the CLI, the agent's log). */
  readonly log: (message: string) => void;
  /** The config's `settings` as the files say now (they may be mid-edit), read once for every subscriber. */
  readonly settings: () => Promise<BackflowConfig['settings']>;
}

/** The `settings` of a config directory, as the runtime commands read them (the files may be mid-edit). */
export async function readSettings(dir: string): Promise<BackflowConfig['settings']> {
  const loaded = await loadDocument(dir);
  return loaded.data.settings as BackflowConfig['settings'];
}

/** Something that reacts to a finished run (alerts, the pull-request report, the status document). */
export type RunSubscriber = (ctx: AfterRunContext) => Promise<void>;

const subscribers: RunSubscriber[] = [];

export function onRunFinished(subscriber: RunSubscriber): void {
  subscribers.push(subscriber);
}

/** Runs every subscriber; a subscriber that fails is logged and never fails the sync. */
export async function afterRun(req: Omit<AfterRunContext, 'settings'>): Promise<void> {
  await loadBuiltIns();
  let settings: Promise<BackflowConfig['settings']> | undefined;
  const ctx: AfterRunContext = { ...req, settings: () => (settings ??= readSettings(req.configDir)) };
  for (const s of subscribers) {
    try {
      await s(ctx);
    } catch (e) {
      ctx.log(`warning: after run ${ctx.run.id}: ${(e as Error).message}`);
    }
  }
}

let loaded = false;
async function loadBuiltIns(): Promise<void> {
  if (loaded) return;
  loaded = true;
  const { githubFirstSync } = await import('../github/first-sync.js');
  onRunFinished(githubFirstSync);
  onRunFinished((await import('../alerts/subscriber.js')).alertsAfterRun);
  onRunFinished((await import('../status/subscriber.js')).statusSubscriber);
  onRunFinished((await import('../store/retention.js')).retentionSubscriber);
}
