import { resolve } from 'node:path';
import { resolveEnv } from '../config/env.js';
import type { BackflowConfig } from '../config/types.gen.js';
import { UserError } from '../errors.js';
import { LocalStateBackend } from './local.js';
import type { StateBackend } from './types.js';

export const DEFAULT_STATE_PATH = '.backflow/state.json';

/** Opens the backend `settings.state` names (default: local `.backflow/state.json` in the config directory). */
export async function openStateBackend(
  dir: string,
  settings: BackflowConfig['settings'],
): Promise<StateBackend> {
  const state = settings?.state;
  if (!state || (state.backend ?? 'local') === 'local') {
    return new LocalStateBackend(resolve(dir, state?.path ?? DEFAULT_STATE_PATH));
  }
  if (state.backend === 'postgres') {
    if (!state.url) throw new UserError('settings.state: the postgres backend needs `url`');
    let mod: typeof import('./postgres.js');
    try {
      mod = await import('./postgres.js');
    } catch (e) {
      throw new UserError('the postgres state backend is not available in this build', { cause: e });
    }
    return mod.PostgresStateBackend.open({
      url: resolveEnv(state.url, 'settings.state.url'),
      table: state.table ?? 'backflow_state',
    });
  }
  throw new UserError(`unknown state backend ${String(state.backend)}`);
}

export type { StateBackend, StateDocument } from './types.js';
