import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Config, readConfig } from '../engine/config/index.js';
import { hasErrors } from '../engine/diagnostics.js';
import { ConfigError } from '../engine/errors.js';
import { openStateBackend } from '../engine/state/index.js';
import type { StateBackend } from '../engine/state/types.js';
import { DEFAULT_STORE_URL, openStore } from '../engine/store/index.js';
import type { RuntimeStore } from '../engine/store/types.js';
import { type IO, printDiagnostics } from './io.js';

/** Reads and validates the config; prints warnings; throws ConfigError (already printed) on errors. */
export async function loadConfig(io: IO, dir: string): Promise<Config> {
  const { config, diagnostics } = await readConfig(dir);
  printDiagnostics(io, diagnostics);
  if (!config || hasErrors(diagnostics)) throw new ConfigError(diagnostics);
  return config;
}

export async function stateBackend(config: Pick<Config, 'dir' | 'doc'>): Promise<StateBackend> {
  return openStateBackend(config.dir, config.doc.settings);
}

/** Opens the runtime store; with `ifExists`, a SQLite store that was never created is not created. */
export async function runtimeStore(
  config: Pick<Config, 'dir' | 'doc'>,
  opts: { ifExists?: boolean } = {},
): Promise<RuntimeStore | undefined> {
  const url = config.doc.settings?.store?.url ?? DEFAULT_STORE_URL;
  if (
    opts.ifExists &&
    url.startsWith('sqlite:') &&
    !existsSync(resolve(config.dir, url.slice('sqlite:'.length)))
  )
    return undefined;
  return openStore({ url, configDir: config.dir });
}
