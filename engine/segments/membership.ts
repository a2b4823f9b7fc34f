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

function toMember(r: Record<string, unknown>): Member {
  const json = String(r.profile);
  return {
    key: String(r.key),
    profile: JSON.parse(json) as Profile,
    json,
    hash: String(r.hash),
    refresh: (r.refresh as string | null) ?? null,
  };
}

/** Adds or replaces members (keys must be unique within the call). */
export async function upsertMembers(
  sql: StoreSql,
  req: { segment: string; profiles: readonly StoredProfile[]; now: string; refresh?: string },
): Promise<void> {
  for (let i = 0; i < req.profiles.length; i += ROWS_PER_STATEMENT) {
    const chunk = req.profiles.slice(i, i + ROWS_PER_STATEMENT).map((p) => [p.key, p.json, p.hash]);
    // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the FROM clause.
    await sql.run(
      `INSERT INTO segment_members (segment, key, profile, hash, refresh, updated_at)
       SELECT ?, value ->> 0, value ->> 1, value ->> 2, ?, ? FROM ${jsonRows(sql)} WHERE true
       ON CONFLICT (segment, key) DO UPDATE SET profile = excluded.profile, hash = excluded.hash,
         refresh = excluded.refresh, updated_at = excluded.updated_at`,
      [req.segment, req.refresh ?? null, req.now, JSON.stringify(chunk)],
    );
  }
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
