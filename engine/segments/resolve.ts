/** Segments, integrations and connectors as the applied state holds them. */
import { manifests } from '../../providers/manifests.js';
import type { DialectName, ProviderType } from '../../providers/sdk.js';
import { parseDuration } from '../config/durations.js';
import { DEFAULTS } from '../config/normalize.js';
import { segmentsInScope } from '../config/rules/templates.js';
import type { Segment, SegmentIntegration } from '../config/types.gen.js';
import { closest } from '../diagnostics.js';
import { UserError } from '../errors.js';
import type { ResourceState } from '../plan/types.js';
import type { StateDocument } from '../state/types.js';
import type { EventKind } from './types.js';

/** A segment of the applied state. */
export interface ResolvedSegment {
  /** The resource name (`vip_customers`). */
  readonly name: string;
  readonly body: Segment;
}

/** An integration with what a flush needs: its queries, batching, and its connector's resource. */
export interface ResolvedIntegration {
  readonly name: string;
  readonly body: SegmentIntegration;
  readonly connector: Pick<ResourceState, 'address' | 'body' | 'sensitive_digest'>;
  readonly dialect: DialectName;
  readonly enabled: boolean;
  readonly batchSize: number;
  readonly timeoutMs: number;
}

/** What an event keeps of an integration that a later apply removed (a delete_segment still runs). */
export interface IntegrationSnapshot {
  readonly integration: SegmentIntegration;
  readonly connector: Pick<ResourceState, 'address' | 'body' | 'sensitive_digest'>;
}

function find(state: StateDocument | null | undefined, address: string): ResourceState | undefined {
  return state?.resources.find((r) => r.address === address);
}

function names(state: StateDocument | null | undefined, kind: string): string[] {
  return (state?.resources ?? []).filter((r) => r.kind === kind).map((r) => r.name);
}

/** The segment named `name`, or a UserError with a suggestion. */
export function resolveSegment(state: StateDocument | null, name: string): ResolvedSegment {
  const found = find(state, `segment.${name}`);
  if (!found) {
    const known = names(state, 'segment');
    const guess = closest(name, known);
    throw new UserError(`segment ${name} is not in the applied state`, {
      hint: guess
        ? `did you mean \`${guess}\`?`
        : known.length
          ? `applied segments: ${known.join(', ')}; a new segment needs \`backflow apply\` first`
          : 'define it under `segments:` and run `backflow apply`',
    });
  }
  return { name, body: found.body as unknown as Segment };
}

/** The segment if the state holds it. */
export function findSegment(
  state: StateDocument | null | undefined,
  name: string,
): ResolvedSegment | undefined {
  const found = find(state, `segment.${name}`);
  return found ? { name, body: found.body as unknown as Segment } : undefined;
}

/** The integration and its connector, from the state or (for a removed integration) a snapshot. */
export function findIntegration(
  state: StateDocument | null | undefined,
  name: string,
  snapshot?: IntegrationSnapshot,
): ResolvedIntegration | undefined {
  const found = find(state, `segment_integration.${name}`);
  const body = (found?.body as unknown as SegmentIntegration | undefined) ?? snapshot?.integration;
  if (!body) return undefined;
  const connector = (found ? find(state, `connector.${body.connector}`) : undefined) ?? snapshot?.connector;
  if (!connector) return undefined;
  const type = connector.body.type as ProviderType;
  const dialect = manifests[type]?.dialect;
  if (!dialect) return undefined;
  return {
    name,
    body,
    connector,
    dialect,
    enabled: body.enabled !== false,
    batchSize: body.batch?.size ?? DEFAULTS.segmentBatchSize,
    timeoutMs: parseDuration(body.batch?.timeout ?? DEFAULTS.segmentBatchTimeout) ?? 10_000,
  };
}

/** Like findIntegration, but a missing integration is a UserError with a suggestion. */
export function resolveIntegration(state: StateDocument | null, name: string): ResolvedIntegration {
  const found = findIntegration(state, name);
  if (found) return found;
  const known = names(state, 'segment_integration');
  const guess = closest(name, known);
  throw new UserError(`segment integration ${name} is not in the applied state`, {
    hint: guess
      ? `did you mean \`${guess}\`?`
      : known.length
        ? `applied integrations: ${known.join(', ')}`
        : 'define it under `segment_integrations:` and run `backflow apply`',
  });
}

/** Names of the integrations whose scope covers `segment`, in name order. */
export function integrationsFor(state: StateDocument | null, segment: string): ResolvedIntegration[] {
  const segments = Object.fromEntries(
    (state?.resources ?? []).filter((r) => r.kind === 'segment').map((r) => [r.name, r.body]),
  ) as unknown as Record<string, Segment>;
  const out: ResolvedIntegration[] = [];
  for (const name of names(state, 'segment_integration').sort()) {
    const integration = findIntegration(state, name);
    if (!integration) continue;
    const scope = integration.body.segments as string | string[];
    if (segmentsInScope(segments, scope).includes(segment)) out.push(integration);
  }
  return out;
}

/** The integration's query for an event kind (add and remove are mandatory; the others optional). */
export function queryOf(integration: Pick<ResolvedIntegration, 'body'>, kind: EventKind): string | undefined {
  const q = integration.body.queries?.[kind];
  return typeof q === 'string' && q.length > 0 ? q : undefined;
}
