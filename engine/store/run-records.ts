import type { RunRecord } from '../sync/types.js';

/**
 * A run's records are stored a batch at a time: one chunk row holds every record of the batch, in
 * order, as a JSON array of `[key, change, status, code, message, payload]`; the failed and expired
 * ones are also kept one row each, indexed by status, for drill-down. Both stores share this encoding.
 */

type Encoded = [
  RunRecord['key'],
  RunRecord['change'],
  RunRecord['status'],
  string | null,
  string | null,
  unknown,
];

export function encodeChunk(records: readonly RunRecord[]): string {
  return JSON.stringify(
    records.map((r): Encoded => [r.key, r.change, r.status, r.code ?? null, r.message ?? null, r.payload]),
  );
}

export function decodeChunk(text: string): RunRecord[] {
  return (JSON.parse(text) as Encoded[]).map(([key, change, status, code, message, payload]) => ({
    key,
    change,
    status,
    ...(code === null ? {} : { code }),
    ...(message === null ? {} : { message }),
    payload: payload as RunRecord['payload'],
  }));
}

/** The records that need their own row (drill-down by status): everything not loaded. */
export function unloaded(records: readonly RunRecord[]): RunRecord[] {
  return records.filter((r) => r.status !== 'ok');
}

/**
 * `listRunRecords` over chunks, without a status or with `ok`. `chunks` lists the run's chunks (seq
 * and record count, no bodies: a thousand rows for a million records); `read` fetches one body. With
 * no status, whole chunks before the offset are skipped unread.
 */
export async function pageChunks(
  chunks: readonly { seq: number; count: number }[],
  read: (seq: number) => Promise<string>,
  req: { status?: RunRecord['status']; limit?: number; offset?: number },
): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let skip = req.offset ?? 0;
  const limit = req.limit ?? Number.POSITIVE_INFINITY;
  if (limit <= 0) return out;
  for (const chunk of chunks) {
    if (req.status === undefined && skip >= chunk.count) {
      skip -= chunk.count;
      continue;
    }
    for (const r of decodeChunk(await read(chunk.seq))) {
      if (req.status !== undefined && r.status !== req.status) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      out.push(r);
      if (out.length >= limit) return out;
    }
  }
  return out;
}
