import type { Diagnostic } from '../diagnostics.js';
import type { SourceMap } from './source-map.js';

/** One config file after parsing: its document (absent on a syntax error), positions and problems. */
export interface ParsedFile {
  readonly file: string;
  readonly data: Record<string, unknown> | undefined;
  readonly map: SourceMap;
  readonly diagnostics: readonly Diagnostic[];
}
