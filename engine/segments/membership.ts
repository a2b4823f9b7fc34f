/** Current membership of each segment in the runtime store (resync re-sends it; model refreshes diff against it). */
import type { StoreSql } from '../store/sql.js';
import { jsonRows, jsonTexts } from './bulk.js';
import type { StoredProfile } from './profiles.js';
import type { Profile } from './types.js';

/** A stored member. */
export interface Member {
  readonly key: string;
  readonly profile: Profile;
  readonly json: string;
  readonly hash: string;
  /** The model refresh that last saw it (model-backed segments). */
  readonly refresh: string | null;
}

const ROWS_PER_STATEMENT = 5_000;

/** How a member that is its key field alone is stored: `#` and the field's name (JSON starts with `{`). */
const ONLY_KEY = '#';

function toMember(r: Record<string, unknown>): Member {
  const key = String(r.key);
  const stored = String(r.profile);
  let profile: Profile;
  let json: string;
  if (stored.startsWith(ONLY_KEY)) {
    profile = { [stored.slice(ONLY_KEY.length)]: key };
    json = JSON.stringify(profile);
  } else {
    json = stored;
    profile = JSON.parse(json) as Profile;
  }
  return { key, profile, json, hash: String(r.hash), refresh: (r.refresh as string | null) ?? null };
}

/**
 * Adds or replaces members (keys must be unique within the call), the cheapest way their shape
 * allows, one statement per few thousand:
 * - profiles that are their key field alone (a managed segment of keys, the usual case): a JSON
 *   array of the keys; the profile is stored as `#FIELD`, not as JSON repeating the key;
 * - other profiles without a hash (a managed segment's): one JSON object, member key → profile,
 *   so neither is encoded twice nor parsed twice (a JSON array of [key, profile, hash] arrays
 *   costs the database a parse of every element);
 * - profiles with a hash (a model refresh's): [key, profile, hash] arrays.
 */
export async function upsertMembers(
  sql: StoreSql,
  req: { segment: string; profiles: readonly StoredProfile[]; now: string; refresh?: string },
): Promise<void> {
  const upsert = `ON CONFLICT (segment, key) DO UPDATE SET profile = excluded.profile, hash = excluded.hash,
         refresh = excluded.refresh, updated_at = excluded.updated_at`;
  for (let i = 0; i < req.profiles.length; i += ROWS_PER_STATEMENT) {
    const chunk = req.profiles.slice(i, i + ROWS_PER_STATEMENT);
    const params = [req.segment, req.refresh ?? null, req.now];
    // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the FROM clause.
    const field = chunk[0]?.onlyKey;
    if (field !== undefined && chunk.every((p) => p.onlyKey === field)) {
      await sql.run(
        `INSERT INTO segment_members (segment, key, profile, hash, refresh, updated_at)
         SELECT ?, value, ?, '', ?, ?
           FROM ${sql.dialect === 'sqlite' ? 'json_each(?)' : 'json_array_elements_text(?::json) AS k(value)'}
          WHERE true ${upsert}`,
        [
          req.segment,
          ONLY_KEY + field,
          req.refresh ?? null,
          req.now,
          JSON.stringify(chunk.map((p) => p.key)),
        ],
      );
      continue;
    }
    if (chunk.every((p) => p.hash === '')) {
      await sql.run(
        `INSERT INTO segment_members (segment, key, profile, hash, refresh, updated_at)
         SELECT ?, key, ${sql.dialect === 'sqlite' ? 'value' : 'value::text'}, '', ?, ?
           FROM ${sql.dialect === 'sqlite' ? 'json_each(?)' : 'json_each(?::json)'} WHERE true ${upsert}`,
        [...params, keyedJson(chunk)],
      );
      continue;
    }
    await sql.run(
      `INSERT INTO segment_members (segment, key, profile, hash, refresh, updated_at)
       SELECT ?, value ->> 0, value ->> 1, value ->> 2, ?, ? FROM ${jsonRows(sql)} WHERE true ${upsert}`,
      [...params, JSON.stringify(chunk.map((p) => [p.key, p.json, p.hash]))],
    );
  }
}

/** `{"key": profile, …}`: each profile's JSON text under its key. */
function keyedJson(profiles: readonly StoredProfile[]): string {
  let out = '{';
  for (let i = 0; i < profiles.length; i++) {
    const p = profiles[i]!;
    out += `${i ? ',' : ''}${JSON.stringify(p.key)}:${p.json}`;
  }
  return `${out}}`;
}

/** Marks members as seen by a model refresh without changing them. */
export async function touchMembers(
  sql: StoreSql,
  req: { segment: string; keys: readonly string[]; refresh: string },
): Promise<void> {
  for (let i = 0; i < req.keys.length; i += ROWS_PER_STATEMENT) {
    const keys = req.keys.slice(i, i + ROWS_PER_STATEMENT);
    await sql.run(`UPDATE segment_members SET refresh = ? WHERE segment = ? AND key IN (${jsonTexts(sql)})`, [
      req.refresh,
      req.segment,
      JSON.stringify(keys),
    ]);
  }
}

export async function removeMembers(sql: StoreSql, segment: string, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
    const chunk = keys.slice(i, i + ROWS_PER_STATEMENT);
    await sql.run(`DELETE FROM segment_members WHERE segment = ? AND key IN (${jsonTexts(sql)})`, [
      segment,
      JSON.stringify(chunk),
    ]);
  }
}

export async function clearMembers(sql: StoreSql, segment: string): Promise<void> {
  await sql.run('DELETE FROM segment_members WHERE segment = ?', [segment]);
}

/** The stored members among `keys`. */
export async function getMembers(
  sql: StoreSql,
  segment: string,
  keys: readonly string[],
): Promise<Map<string, Member>> {
  const out = new Map<string, Member>();
  for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
    const chunk = keys.slice(i, i + ROWS_PER_STATEMENT);
    const rows = await sql.all<Record<string, unknown>>(
      `SELECT key, profile, hash, refresh FROM segment_members WHERE segment = ? AND key IN (${jsonTexts(sql)})`,
      [segment, JSON.stringify(chunk)],
    );
    for (const r of rows) {
      const m = toMember(r);
      out.set(m.key, m);
    }
  }
  return out;
}

/** Every member of a segment, in key order, a page at a time (keyset pagination). */
export async function* pageMembers(
  sql: StoreSql,
  req: { segment: string; pageSize?: number; notSeenBy?: string },
): AsyncIterable<Member[]> {
  const size = req.pageSize ?? 1000;
  let after: string | null = null;
  for (;;) {
    const params: unknown[] = [req.segment];
    let where = 'segment = ?';
    if (after !== null) {
      where += ' AND key > ?';
      params.push(after);
    }
    if (req.notSeenBy !== undefined) {
      where += ' AND (refresh IS NULL OR refresh <> ?)';
      params.push(req.notSeenBy);
    }
    const rows = await sql.all<Record<string, unknown>>(
      `SELECT key, profile, hash, refresh FROM segment_members WHERE ${where} ORDER BY key LIMIT ?`,
      [...params, size],
    );
    if (rows.length === 0) return;
    const page = rows.map(toMember);
    yield page;
    if (page.length < size) return;
    after = page.at(-1)!.key;
  }
}

export async function memberCount(sql: StoreSql, segment: string): Promise<number> {
  const [row] = await sql.all<{ n: unknown }>('SELECT count(*) AS n FROM segment_members WHERE segment = ?', [
    segment,
  ]);
  return Number(row?.n ?? 0);
}
