import { closest, type Diagnostic } from '../../diagnostics.js';
import { at, entries, type Rule } from './context.js';

type Section =
  | 'sources'
  | 'models'
  | 'destinations'
  | 'mappings'
  | 'connectors'
  | 'segments'
  | 'segment_integrations';

const SINGULAR: Record<Section, string> = {
  sources: 'source',
  models: 'model',
  destinations: 'destination',
  mappings: 'mapping',
  connectors: 'connector',
  segments: 'segment',
  segment_integrations: 'segment_integration',
};

/** Every reference names a resource that exists (mapping → model/destination, model → source, …). */
export const referencesExist: Rule = ({ doc, map }) => {
  const out: Diagnostic[] = [];
  const check = (from: string, path: (string | number)[], target: Section, name: unknown) => {
    if (typeof name !== 'string') return;
    const pool = Object.keys((doc[target] as object | undefined) ?? {});
    if (pool.includes(name)) return;
    const hint = closest(name, pool);
    out.push({
      severity: 'error',
      code: 'missing_reference',
      summary: `${from} refers to ${SINGULAR[target]} \`${name}\`, which is not defined`,
      detail: hint
        ? `did you mean \`${hint}\`?`
        : pool.length
          ? `defined ${target}: ${pool.join(', ')}`
          : `define it under \`${target}:\``,
      address: from,
      ...at(map, path),
    });
  };
  for (const [name, m] of entries(doc.models))
    check(`model.${name}`, ['models', name, 'source'], 'sources', m.source);
  for (const [name, m] of entries(doc.mappings)) {
    check(`mapping.${name}`, ['mappings', name, 'model'], 'models', m.model);
    check(`mapping.${name}`, ['mappings', name, 'destination'], 'destinations', m.destination);
  }
  for (const [name, s] of entries(doc.segments)) {
    if (s.members && typeof s.members === 'object')
      check(`segment.${name}`, ['segments', name, 'members', 'model'], 'models', s.members.model);
  }
  for (const [name, i] of entries(doc.segment_integrations)) {
    check(
      `segment_integration.${name}`,
      ['segment_integrations', name, 'connector'],
      'connectors',
      i.connector,
    );
    if (Array.isArray(i.segments))
      i.segments.forEach((s, idx) => {
        check(`segment_integration.${name}`, ['segment_integrations', name, 'segments', idx], 'segments', s);
      });
  }
  for (const [name, a] of entries(doc.alerts)) {
    if (Array.isArray(a.mappings))
      a.mappings.forEach((m, idx) => {
        check(`alert.${name}`, ['alerts', name, 'mappings', idx], 'mappings', m);
      });
    if (Array.isArray(a.segment_integrations))
      a.segment_integrations.forEach((m, idx) => {
        check(`alert.${name}`, ['alerts', name, 'segment_integrations', idx], 'segment_integrations', m);
      });
  }
  return out;
};

/** Two segments with the same numeric id would write over each other downstream. */
export const segmentIdsUnique: Rule = ({ doc, map }) => {
  const out: Diagnostic[] = [];
  const seen = new Map<number, string>();
  for (const [name, s] of entries(doc.segments)) {
    if (typeof s.id !== 'number') continue;
    const other = seen.get(s.id);
    if (other)
      out.push({
        severity: 'error',
        code: 'duplicate_segment_id',
        summary: `segment.${name} has id ${s.id}, already used by segment.${other}`,
        detail: 'segment ids identify segments in the external tables: give each segment its own id',
        address: `segment.${name}`,
        ...at(map, ['segments', name, 'id']),
      });
    else seen.set(s.id, name);
  }
  return out;
};
