import type { PathDiff, ResourceState } from './types.js';

/** Paths that differ between two bodies, leaf by leaf (`fields.email`, `sql`); arrays compare whole. */
export function diffBodies(before: unknown, after: unknown, prefix = ''): PathDiff[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffBodies(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [{ path: prefix, before: before ?? null, after: after ?? null }];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** True when the resource changed, including a change hidden by redaction. */
export function resourceChanged(a: ResourceState, b: ResourceState): boolean {
  return JSON.stringify(a.body) !== JSON.stringify(b.body) || a.sensitive_digest !== b.sensitive_digest;
}
