import { manifests } from '../../../providers/manifests.js';
import type { ProviderType } from '../../../providers/sdk.js';
import type { Diagnostic } from '../../diagnostics.js';
import { parseTemplate, templateFields } from '../../segments/template.js';
import type { Segment } from '../types.gen.js';
import { entries, type Rule } from './context.js';

const QUERY_KINDS = ['add', 'remove', 'clear', 'upsert_segment', 'delete_segment'] as const;

/** Segments an integration covers (`all` or a list). */
export function segmentsInScope(
  segments: Record<string, Segment> | undefined,
  scope: string | readonly string[] | undefined,
): string[] {
  const all = Object.keys(segments ?? {});
  if (scope === 'all') return all;
  return Array.isArray(scope) ? scope.filter((s) => all.includes(s)) : [];
}

/** Every query template parses for its connector's dialect and uses only fields its segments' profiles have. */
export const templatesParse: Rule = ({ doc, map }) => {
  const out: Diagnostic[] = [];
  for (const [name, integration] of entries(doc.segment_integrations)) {
    const connector = doc.connectors?.[integration.connector];
    const type = connector?.type as ProviderType | undefined;
    const dialect = type && type in manifests ? manifests[type].dialect : undefined;
    if (!dialect || !integration.queries || typeof integration.queries !== 'object') continue;
    const address = `segment_integration.${name}`;
    for (const kind of QUERY_KINDS) {
      const text = integration.queries[kind];
      if (typeof text !== 'string') continue;
      const path = ['segment_integrations', name, 'queries', kind];
      const pos = map.value(path);
      const parsed = parseTemplate(text, dialect);
      if (!parsed.ok) {
        for (const e of parsed.errors)
          out.push({
            severity: 'error',
            code: 'template_error',
            summary: `${address}: query \`${kind}\`, line ${e.line} column ${e.column}: ${e.message}`,
            ...(e.hint ? { detail: e.hint } : {}),
            address,
            ...(pos
              ? {
                  file: pos.file,
                  line: pos.line + e.line - 1,
                  column: e.line === 1 ? pos.column + e.column - 1 : e.column,
                }
              : {}),
          });
        continue;
      }
      const used = templateFields(parsed.template);
      if (used.length === 0) continue;
      for (const segName of segmentsInScope(doc.segments, integration.segments as string | string[])) {
        const segment = doc.segments?.[segName];
        if (segment?.members !== 'managed') continue; // model-backed: checked against the model's columns by plan refresh
        const known = new Set([segment.key, ...(segment.fields ?? [])]);
        for (const field of used)
          if (!known.has(field))
            out.push({
              severity: 'error',
              code: 'template_unknown_field',
              summary: `${address}: query \`${kind}\` uses profile field \`${field}\`, which segment.${segName}'s profiles do not have`,
              detail: `add \`${field}\` to segment.${segName}.fields, or use one of: ${[...known].join(', ')}`,
              address,
              ...(pos ?? {}),
            });
      }
    }
  }
  return out;
};
