import type { ResourceKind } from '../plan/types.js';

/** Top-level sections that are maps of resources, and their singular kind (used in addresses and HCL blocks). */
export const SECTIONS = {
  sources: 'source',
  models: 'model',
  destinations: 'destination',
  mappings: 'mapping',
  alerts: 'alert',
  connectors: 'connector',
  segments: 'segment',
  segment_integrations: 'segment_integration',
} as const satisfies Record<string, ResourceKind>;

export type SectionName = keyof typeof SECTIONS;

export const SECTION_NAMES = Object.keys(SECTIONS) as SectionName[];

export const KIND_TO_SECTION: Readonly<Record<ResourceKind, SectionName>> = Object.fromEntries(
  Object.entries(SECTIONS).map(([section, kind]) => [kind, section]),
) as Record<ResourceKind, SectionName>;

export function address(kind: ResourceKind, name: string): string {
  return `${kind}.${name}`;
}

export function parseAddress(text: string): { kind: ResourceKind; name: string } | undefined {
  const dot = text.indexOf('.');
  if (dot < 0) return undefined;
  const kind = text.slice(0, dot) as ResourceKind;
  if (!(kind in KIND_TO_SECTION)) return undefined;
  return { kind, name: text.slice(dot + 1) };
}
