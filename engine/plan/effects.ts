import { segmentsInScope } from '../config/rules/templates.js';
import type { Segment } from '../config/types.gen.js';
import type { Effect, ResourceChange, ResourceState } from './types.js';

function byKind(resources: readonly ResourceState[], kind: string): Map<string, Record<string, unknown>> {
  return new Map(
    resources.filter((r) => r.kind === kind).map((r) => [r.name, r.body as Record<string, unknown>]),
  );
}

/** Which data effects each change causes (SPEC §2): resyncs, segment upserts/deletes, mappings starting/stopping. */
export function effectsOf(
  change: Omit<ResourceChange, 'effects'>,
  before: readonly ResourceState[],
  after: readonly ResourceState[],
): Effect[] {
  const [kind, name] = splitAddress(change.address);
  const afterMappings = byKind(after, 'mapping');
  const out: Effect[] = [];
  const paths = new Set(change.diff.map((d) => d.path.split('.')[0]));
  switch (kind) {
    case 'mapping': {
      if (change.action === 'create') {
        out.push({
          kind: 'full_resync',
          mapping: name,
          reason: 'new mapping: the first sync sends every record',
        });
        if (change.after?.enabled !== false && change.after?.schedule !== 'manual')
          out.push({ kind: 'mapping_enabled', mapping: name });
      } else if (change.action === 'delete') {
        out.push({ kind: 'mapping_removed', mapping: name });
      } else {
        const reasons: string[] = [];
        if (paths.has('fields')) reasons.push('its fields changed');
        if (paths.has('model')) reasons.push('it reads another model');
        if (paths.has('destination') || paths.has('table') || paths.has('key') || paths.has('action'))
          reasons.push('its target changed');
        if (reasons.length) out.push({ kind: 'full_resync', mapping: name, reason: reasons.join(', ') });
        if (paths.has('enabled'))
          out.push({
            kind: change.after?.enabled === false ? 'mapping_disabled' : 'mapping_enabled',
            mapping: name,
          });
      }
      break;
    }
    case 'model': {
      if (change.action === 'update' && (paths.has('sql') || paths.has('primary_key'))) {
        const what = [paths.has('sql') ? 'sql' : '', paths.has('primary_key') ? 'primary_key' : ''].filter(
          Boolean,
        );
        for (const [mapping, body] of afterMappings)
          if (body.model === name)
            out.push({ kind: 'full_resync', mapping, reason: `model.${name} ${what.join(' and ')} changed` });
      }
      break;
    }
    case 'segment': {
      if (change.action === 'delete') {
        for (const integration of integrationsCovering(name, before, before, 'delete_segment'))
          out.push({ kind: 'delete_segment', segment: name, integration });
      } else if (change.action === 'create' || paths.has('name') || paths.has('id')) {
        for (const integration of integrationsCovering(name, after, after, 'upsert_segment'))
          out.push({ kind: 'upsert_segment', segment: name, integration });
      }
      break;
    }
    case 'segment_integration': {
      if (change.action === 'create' || paths.has('segments') || paths.has('connector')) {
        const queries = change.after?.queries as Record<string, string> | undefined;
        if (queries?.upsert_segment) {
          const segs = byKind(after, 'segment') as unknown as Map<string, Segment>;
          const now = segmentsInScope(Object.fromEntries(segs), change.after?.segments as string[]);
          const was =
            change.action === 'create' || paths.has('connector')
              ? []
              : segmentsInScope(Object.fromEntries(segs), change.before?.segments as string[]);
          // Segments created in this same plan get their upsert from the segment's own change.
          const existed = new Set(before.filter((r) => r.kind === 'segment').map((r) => r.name));
          for (const s of now)
            if (!was.includes(s) && existed.has(s))
              out.push({ kind: 'upsert_segment', segment: s, integration: name });
        }
      }
      break;
    }
  }
  return out;
}

function integrationsCovering(
  segment: string,
  integrationsFrom: readonly ResourceState[],
  segmentsFrom: readonly ResourceState[],
  query: string,
): string[] {
  const segs = Object.fromEntries(byKind(segmentsFrom, 'segment')) as unknown as Record<string, Segment>;
  const out: string[] = [];
  for (const [name, body] of byKind(integrationsFrom, 'segment_integration')) {
    const queries = body.queries as Record<string, string> | undefined;
    if (!queries?.[query]) continue;
    if (segmentsInScope(segs, body.segments as string[]).includes(segment)) out.push(name);
  }
  return out;
}

function splitAddress(address: string): [string, string] {
  const dot = address.indexOf('.');
  return [address.slice(0, dot), address.slice(dot + 1)];
}
