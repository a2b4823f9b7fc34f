import { type Diagnostic, hasErrors } from '../diagnostics.js';
import type { ResourceState } from '../plan/types.js';
import { loadDocument } from './load.js';
import { toResources } from './normalize.js';
import { runRules } from './rules/index.js';
import { validateSchema } from './schema.js';
import type { SourceMap } from './source-map.js';
import type { BackflowConfig } from './types.gen.js';

/** A config directory after parsing, schema and rules: typed, positioned, normalised. */
export interface Config {
  /** Absolute config directory. */
  readonly dir: string;
  readonly files: readonly string[];
  readonly doc: BackflowConfig;
  readonly map: SourceMap;
  /** Normalised resources sorted by address (what `apply` records). */
  readonly resources: readonly ResourceState[];
}

export interface ReadConfigResult {
  /** Present when there are no errors. */
  readonly config?: Config;
  readonly diagnostics: readonly Diagnostic[];
}

/** Loads, validates and normalises a config directory; problems come back as diagnostics, never thrown. */
export async function readConfig(dir: string): Promise<ReadConfigResult> {
  const loaded = await loadDocument(dir);
  const diagnostics: Diagnostic[] = [...loaded.diagnostics];
  if (loaded.files.length === 0) return { diagnostics };
  diagnostics.push(...validateSchema(loaded.data, loaded.map));
  const doc = loaded.data as BackflowConfig;
  diagnostics.push(...runRules({ doc, map: loaded.map }));
  const sorted = sortDiagnostics(diagnostics);
  if (hasErrors(sorted)) return { diagnostics: sorted };
  return {
    config: { dir: loaded.dir, files: loaded.files, doc, map: loaded.map, resources: toResources(doc) },
    diagnostics: sorted,
  };
}

function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      (a.file ?? '').localeCompare(b.file ?? '') ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0),
  );
}

export type { BackflowConfig } from './types.gen.js';
