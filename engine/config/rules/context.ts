import type { Diagnostic, SourcePosition } from '../../diagnostics.js';
import type { SourceMap } from '../source-map.js';
import type { BackflowConfig } from '../types.gen.js';

/** What every rule gets: the merged (possibly schema-invalid) document and positions. Rules never throw. */
export interface RuleContext {
  readonly doc: BackflowConfig;
  readonly map: SourceMap;
}

export type Rule = (ctx: RuleContext) => Diagnostic[];

/** Entries of a section that are objects (rules run even when the schema found problems). */
export function entries<T>(section: Record<string, T> | undefined): [string, T][] {
  if (!section || typeof section !== 'object') return [];
  return Object.entries(section).filter(([, v]) => v !== null && typeof v === 'object') as [string, T][];
}

export function at(
  map: SourceMap,
  path: (string | number)[],
  which: 'key' | 'value' = 'value',
): Partial<SourcePosition> {
  return (which === 'key' ? map.key(path) : map.value(path)) ?? {};
}
