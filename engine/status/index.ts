import { resolve } from 'node:path';
import { resolveEnv } from '../config/env.js';
import type { BackflowConfig } from '../config/types.gen.js';
import { UserError } from '../errors.js';
import { DEFAULT_STATE_PATH } from '../state/index.js';
import { LocalStatusStore, statusPathFor } from './local.js';
import type { StatusStore } from './types.js';

/**
 * Opens the status document where `settings.state` keeps the state: `status.json` beside a local
 * state file, or the table `<state table>_status` of the postgres state backend (its own connection).
 */
export async function openStatusStore(
  dir: string,
  settings: BackflowConfig['settings'],
): Promise<StatusStore> {
  const state = settings?.state;
  if (!state || (state.backend ?? 'local') === 'local')
    return new LocalStatusStore(statusPathFor(resolve(dir, state?.path ?? DEFAULT_STATE_PATH)));
  if (state.backend === 'postgres') {
    if (!state.url) throw new UserError('settings.state: the postgres backend needs `url`');
    const { PostgresStatusStore } = await import('./postgres.js');
    return PostgresStatusStore.open({
      url: resolveEnv(state.url, 'settings.state.url'),
      table: `${state.table ?? 'backflow_state'}_status`,
    });
  }
  throw new UserError(`unknown state backend ${String(state.backend)}`);
}

export { emptyStatus, isFailing } from './document.js';
export type { IntegrationStatus, MappingStatus, StatusDocument, StatusStore } from './types.js';
