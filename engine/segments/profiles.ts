/** Profiles as the queue and the membership table keep them: JSON-safe values, a text key, a content hash. */
import { createHash } from 'node:crypto';
import type { Segment } from '../config/types.gen.js';
import type { Profile } from './types.js';

/** A profile ready to store. */
export interface StoredProfile {
  /** The key field's value as text (the membership key). */
  readonly key: string;
  /** JSON text of the profile's kept fields. */
  readonly json: string;
  /** Content hash, for model-backed segments (a refresh compares it); empty for managed ones. */
  readonly hash: string;
  /**
   * Set (to the key field's name) when the profile is its key field alone, holding `key` as a
   * string: the membership then stores no JSON for it (membership.ts).
   */
  readonly onlyKey?: string;
}

/** A value as JSON can hold it: dates as ISO text, big integers as numbers when exact (else text), bytes as hex. */
export function jsonSafe(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case 'undefined':
      return null;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
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
  const p = profileShaper(segment)(raw);
  return typeof p === 'string' ? { ok: false, problem: p } : { ok: true, value: p };
}

/**
 * `storedProfile` for many profiles of one segment: the stored form, or why a profile cannot be
 * one (as text). What the segment keeps is worked out once.
 */
export function profileShaper(segment: Segment): (raw: Profile) => StoredProfile | string {
  const keyField = segment.key;
  const listed = keptFields(segment);
  const fields = listed && [...new Set(listed)];
  return (raw) => {
    let key: string;
    const v = raw[keyField];
    if (typeof v === 'string' && Object.hasOwn(raw, keyField)) key = v;
    else {
      const k = profileKey(raw, keyField);
      if ('problem' in k) return k.problem;
      key = k.key;
    }
    const profile: Record<string, unknown> = {};
    if (!fields) {
      for (const f of Object.keys(raw)) profile[f] = jsonSafe(raw[f]);
      const json = JSON.stringify(profile);
      return { key, json, hash: hashText(json) };
    }
    let kept = 0;
    for (const f of fields)
      if (Object.hasOwn(raw, f)) {
        profile[f] = jsonSafe(raw[f]);
        kept++;
      }
    // Only a model refresh compares contents; a managed segment's members are replaced as submitted.
    const json = JSON.stringify(profile);
    return kept === 1 && typeof v === 'string'
      ? { key, json, hash: '', onlyKey: keyField }
      : { key, json, hash: '' };
  };
}

export function hashText(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}
