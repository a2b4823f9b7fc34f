import { hash } from 'node:crypto';
import type { Row } from '../../providers/sdk.js';

/**
 * Record identity and content hashing for the diff (SPEC §3): the same data must give the same
 * text whatever order the driver returned the keys in, and whatever JS type carried a big integer.
 */

/**
 * Canonical JSON: object keys sorted (UTF-16 code unit order), bigint as a decimal string, Date as its
 * ISO text (an invalid date as null), bytes as base64 text, `undefined` properties dropped (in arrays:
 * null, like JSON), non-finite numbers as null. Values with `toJSON` (decimal types) use it.
 */
export function canonicalJson(value: unknown): string {
  return encode(value) ?? 'null';
}

// `undefined` return: a value JSON leaves out (undefined, functions, symbols).
function encode(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return quote(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return `"${v.toString()}"`;
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'object':
      return encodeObject(v);
  }
}

// Most strings need no escaping; JSON.stringify only for those that do (quotes, controls, surrogates).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function encodeObject(v: object | null): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ',';
      out += encode(v[i]) ?? 'null';
    }
    return `${out}]`;
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'null' : `"${v.toISOString()}"`;
  if (v instanceof Uint8Array)
    return `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"`;
  const withToJson = v as { toJSON?: unknown };
  if (typeof withToJson.toJSON === 'function')
    return encode((withToJson.toJSON as () => unknown)()) ?? 'null';
  const record = v as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const item = encode(record[k]);
    if (item === undefined) continue;
    out += `${first ? '' : ','}${quote(k)}:${item}`;
    first = false;
  }
  return `${out}}`;
}

/** Content hash of a record's mapped fields (null for a deleted record): base64url SHA-1 of its canonical JSON. */
export function hashRecord(fields: Readonly<Record<string, unknown>> | null): string {
  // crypto.hash: one call, no Hash object; about twice as fast as createHash for record-sized input.
  return hash('sha1', canonicalJson(fields), 'base64url');
}

/**
 * Stable per (mapping, key, content) so receivers can de-duplicate retried deliveries. For a deleted
 * record pass the hash of the content last loaded, so that a key deleted, re-added and deleted again
 * gets a new key each time it is deleted.
 */
export function idempotencyKey(mapping: string, key: string, contentHash: string): string {
  // NUL separates the parts: it cannot occur in a resource name or a hash, so no two inputs collide.
  return hash('sha256', `${mapping}\0${key}\0${contentHash}`, 'base64url');
}

/** A record's primary key as text, or why the row has none. */
export type KeyResult =
  | { readonly ok: true; readonly key: string }
  | {
      readonly ok: false;
      readonly code: 'null_primary_key' | 'missing_primary_key';
      readonly message: string;
    };

/**
 * The primary key as text: a single column's value as its text, a composite key as a JSON array of
 * each column's text. Only the text counts, so the number 42, the bigint 42n and the string "42" are
 * the same key: drivers disagree on how they return integer and numeric columns (pg: bigint as a
 * string, mysql2: as a number), and a model switching driver or cast must not look like every record
 * deleted and re-added.
 */
export function recordKey(row: Row, primaryKey: string | readonly string[]): KeyResult {
  if (typeof primaryKey === 'string') return keyPart(row, primaryKey);
  if (primaryKey.length === 1 && primaryKey[0] !== undefined) return keyPart(row, primaryKey[0]);
  const parts: string[] = [];
  for (const column of primaryKey) {
    const part = keyPart(row, column);
    if (!part.ok) return part;
    parts.push(part.key);
  }
  return { ok: true, key: JSON.stringify(parts) };
}

function keyPart(row: Row, column: string): KeyResult {
  if (!Object.hasOwn(row, column)) {
    return {
      ok: false,
      code: 'missing_primary_key',
      message: `the model returned no primary key column \`${column}\` (check the model's SQL and primary_key)`,
    };
  }
  const v = row[column];
  if (v === null || v === undefined) {
    return {
      ok: false,
      code: 'null_primary_key',
      message: `primary key column \`${column}\` is NULL: the record cannot be identified`,
    };
  }
  return { ok: true, key: keyText(v) };
}

function keyText(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(v);
    default:
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
      if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
      return canonicalJson(v);
  }
}
