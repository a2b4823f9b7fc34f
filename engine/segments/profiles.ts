/** Profiles as the queue and the membership table keep them: JSON-safe values, a text key, a content hash. */
import { createHash } from 'node:crypto';
import type { Segment } from '../config/types.gen.js';
import type { Profile } from './types.js';

/** A profile ready to store. */
export interface StoredProfile {
  /** The key field's value as text (the membership key). */
  readonly key: string;
  readonly profile: Profile;
  /** JSON text of `profile`. */
  readonly json: string;
  /** Content hash, for model-backed segments (a refresh compares it); empty for managed ones. */
  readonly hash: string;
}

/** A value as JSON can hold it: dates as ISO text, big integers as numbers when exact (else text), bytes as hex. */
export function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  if (value === undefined) return null;
  return value;
}

/**
 * The key of a profile as text, or why it has none. A key must be a string, a number or a
 * bigint: an object, a boolean or a missing/NULL value cannot identify a profile.
 */
export function profileKey(profile: Profile, keyField: string): { key: string } | { problem: string } {
  if (!Object.hasOwn(profile, keyField) || profile[keyField] === null || profile[keyField] === undefined)
    return { problem: `has no "${keyField}" (the segment's key field)` };
  const v = profile[keyField];
  if (typeof v === 'string') return { key: v };
  if (typeof v === 'number' && Number.isFinite(v)) return { key: String(v) };
  if (typeof v === 'bigint') return { key: v.toString() };
  return {
    problem: `"${keyField}" must be a string or a number, not ${Array.isArray(v) ? 'an array' : typeof v}`,
  };
}

/**
 * The fields a managed segment keeps of a submitted profile: its key and the declared `fields`
 * (what its integrations' templates may use). A model-backed segment keeps every column.
 */
export function keptFields(segment: Segment): readonly string[] | undefined {
  return segment.members === 'managed' ? [segment.key, ...(segment.fields ?? [])] : undefined;
}

/** Builds the stored form of a profile, or returns why it cannot be one. */
export function storedProfile(
  raw: Profile,
  segment: Segment,
): { ok: true; value: StoredProfile } | { ok: false; problem: string } {
  const k = profileKey(raw, segment.key);
  if ('problem' in k) return { ok: false, problem: k.problem };
  const fields = keptFields(segment);
  const profile: Record<string, unknown> = {};
  if (fields) {
    for (const f of fields) if (Object.hasOwn(raw, f)) profile[f] = jsonSafe(raw[f]);
  } else for (const [f, v] of Object.entries(raw)) profile[f] = jsonSafe(v);
  const json = JSON.stringify(profile);
  // Only a model refresh compares contents; a managed segment's members are replaced as submitted.
  return { ok: true, value: { key: k.key, profile, json, hash: fields ? '' : hashText(json) } };
}

export function hashText(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}
