import { loadDocument } from '../engine/config/load.js';
import type { BackflowConfig } from '../engine/config/types.gen.js';
import { ConfigError } from '../engine/errors.js';
import { type IO, printDiagnostics } from './io.js';

/** What runtime commands need of a config directory: its path and `settings` (state backend, store, agent). */
export interface RuntimeConfig {
  readonly dir: string;
  readonly doc: Pick<BackflowConfig, 'settings'>;
}

/**
 * Runtime commands run the *applied* state; the config files may be mid-edit, so only a file that
 * cannot be parsed stops them (its settings could not be read).
 */
export async function readSettings(io: IO, dir: string): Promise<RuntimeConfig> {
  const loaded = await loadDocument(dir);
  const fatal = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (fatal.length) {
    printDiagnostics(io, fatal);
    throw new ConfigError(fatal);
  }
  return { dir: loaded.dir, doc: { settings: (loaded.data.settings ?? {}) as BackflowConfig['settings'] } };
}
