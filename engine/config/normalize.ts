import { createHash } from 'node:crypto';
import { manifests } from '../../providers/manifests.js';
import type { ActionName, ProviderType } from '../../providers/sdk.js';
import type { ResourceKind, ResourceState } from '../plan/types.js';
import { redact, redactDeep } from './env.js';
import { KIND_TO_SECTION, SECTION_NAMES, SECTIONS } from './sections.js';
import type { BackflowConfig, Mapping, SegmentIntegration } from './types.gen.js';

/** Defaults written into normalised bodies, so spelling a default out is not a change. */
export const DEFAULTS = {
  batchSize: 1000,
  retryMaxAge: '14d',
  segmentBatchSize: 100,
  segmentBatchTimeout: '10s',
  repeatAfter: '24h',
} as const;

/** The default `sync_on` of an action on a destination type. */
export function defaultSyncOn(destinationType: string | undefined, action: string): string[] {
  const spec =
    destinationType && destinationType in manifests
      ? manifests[destinationType as ProviderType].actions[action as ActionName]
      : undefined;
  return [...(spec?.defaultSyncOn ?? spec?.changes ?? ['added', 'updated'])];
}

function normalizeMapping(m: Mapping, doc: BackflowConfig): Record<string, unknown> {
  const destType = doc.destinations?.[m.destination]?.type;
  return {
    ...m,
    enabled: m.enabled ?? true,
    schedule: m.schedule ?? 'manual',
    batch_size: m.batch_size ?? DEFAULTS.batchSize,
    retry: { max_age: m.retry?.max_age ?? DEFAULTS.retryMaxAge },
    sync_on: m.sync_on ?? defaultSyncOn(destType, m.action),
  };
}

function normalizeIntegration(i: SegmentIntegration): Record<string, unknown> {
  return {
    ...i,
    enabled: i.enabled ?? true,
    batch: {
      size: i.batch?.size ?? DEFAULTS.segmentBatchSize,
      timeout: i.batch?.timeout ?? DEFAULTS.segmentBatchTimeout,
    },
  };
}

/** Sorts object keys recursively so equal bodies serialise identically. */
export function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    ) as T;
  return value;
}

/** A resource body with defaults filled in and keys sorted, before redaction. */
function normalizedBody(kind: ResourceKind, body: unknown, doc: BackflowConfig): Record<string, unknown> {
  let normal = body as Record<string, unknown>;
  if (kind === 'mapping') normal = normalizeMapping(body as Mapping, doc);
  if (kind === 'segment_integration') normal = normalizeIntegration(body as SegmentIntegration);
  if (kind === 'alert') normal = { ...normal, repeat_after: normal.repeat_after ?? DEFAULTS.repeatAfter };
  return sortKeys(normal);
}

function digest(sorted: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

/** The resources of a valid document, normalised (defaults, sorted keys, redacted), sorted by address. */
export function toResources(doc: BackflowConfig): ResourceState[] {
  const out: ResourceState[] = [];
  for (const section of SECTION_NAMES) {
    const kind: ResourceKind = SECTIONS[section];
    for (const [name, body] of Object.entries((doc[section] as Record<string, unknown> | undefined) ?? {})) {
      const sorted = normalizedBody(kind, body, doc);
      const redacted = redactDeep(sorted);
      out.push({
        address: `${kind}.${name}`,
        kind,
        name,
        body: redacted,
        ...(JSON.stringify(redacted) !== JSON.stringify(sorted) ? { sensitive_digest: digest(sorted) } : {}),
      });
    }
  }
  return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

/**
 * The unredacted body of a resource whose state keeps it redacted (an inline password), taken from the
 * config document only while it is the applied one (same digest, computed as `toResources` does).
 */
export function appliedUnredacted(
  doc: BackflowConfig,
  resource: { kind: ResourceKind; name: string; sensitive_digest: string },
): Record<string, unknown> | undefined {
  const raw = (doc[KIND_TO_SECTION[resource.kind]] as Record<string, unknown> | undefined)?.[resource.name];
  if (!raw || typeof raw !== 'object') return undefined;
  const sorted = normalizedBody(resource.kind, raw, doc);
  return digest(sorted) === resource.sensitive_digest ? sorted : undefined;
}

export { redact };
