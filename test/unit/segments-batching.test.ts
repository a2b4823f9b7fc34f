import { describe, expect, it } from 'vitest';
import {
  BASE_BACKOFF_MS,
  backoffMs,
  dueAt,
  headSlices,
  isDue,
  MAX_ATTEMPTS,
  MAX_BACKOFF_MS,
  nextAttemptAt,
} from '../../engine/segments/batching.js';
import type { EventKind } from '../../engine/segments/types.js';

interface Row {
  readonly seq: number;
  readonly kind: EventKind;
  readonly keys: readonly string[];
  taken: number;
}

/** Queue rows: each a run of same-kind events of one enqueue (segment events hold no keys). */
function rows(...spec: [EventKind, ...string[]][]): Row[] {
  return spec.map(([kind, ...keys], i) => ({ seq: i + 1, kind, keys, taken: 0 }));
}

const view = (queue: readonly Row[]) =>
  queue.map((r) => ({ seq: r.seq, kind: r.kind, count: r.keys.length, start: r.taken }));

/**
 * Replays a queue through headSlices the way a flush does (a finished row leaves, a row taken in
 * part remembers how far) and applies each batch to a set of members: the final state must equal
 * applying the events one by one.
 */
function simulate(initial: readonly Row[], size: number) {
  let queue = initial.map((r) => ({ ...r }));
  const members = new Set<string>();
  const batches: string[] = [];
  while (queue.length) {
    const slices = headSlices(view(queue), size);
    const kind = queue.find((r) => r.seq === slices[0]!.seq)!.kind;
    const keys = slices.flatMap((s) => queue.find((r) => r.seq === s.seq)!.keys.slice(s.from, s.to));
    batches.push(`${kind}:${keys.join(',')}`);
    for (const k of keys) {
      if (kind === 'add') members.add(k);
      if (kind === 'remove') members.delete(k);
    }
    if (kind === 'clear') members.clear();
    for (const s of slices) queue.find((r) => r.seq === s.seq)!.taken = s.to;
    queue = queue.filter(
      (r) => r.taken < r.keys.length || (r.keys.length === 0 && !slices.some((s) => s.seq === r.seq)),
    );
  }
  return { members: [...members].sort(), batches };
}

describe('headSlices', () => {
  it('takes the leading run of one kind across rows, at most batch.size', () => {
    expect(
      headSlices(view(rows(['add', 'a', 'b'], ['add', 'c'], ['remove', 'a'], ['add', 'd'])), 10),
    ).toEqual([
      { seq: 1, from: 0, to: 2, count: 2 },
      { seq: 2, from: 0, to: 1, count: 1 },
    ]);
    expect(headSlices(view(rows(['add', 'a', 'b', 'c'], ['add', 'd'])), 2)).toEqual([
      { seq: 1, from: 0, to: 2, count: 3 },
    ]);
  });

  it('starts where earlier batches stopped inside a row', () => {
    const queue = rows(['add', 'a', 'b', 'c'], ['add', 'd', 'e']);
    queue[0]!.taken = 2;
    expect(headSlices(view(queue), 2)).toEqual([
      { seq: 1, from: 2, to: 3, count: 3 },
      { seq: 2, from: 0, to: 1, count: 2 },
    ]);
  });

  it('gives a clear or segment event a batch of its own', () => {
    expect(headSlices(view(rows(['clear'], ['clear'], ['add', 'a'])), 10)).toEqual([
      { seq: 1, from: 0, to: 0, count: 0 },
    ]);
    expect(headSlices(view(rows(['upsert_segment'], ['upsert_segment'])), 10)).toHaveLength(1);
    expect(headSlices(view(rows(['delete_segment'])), 10)).toHaveLength(1);
  });

  it('is one by one with size 1', () => {
    expect(simulate(rows(['add', 'a', 'b']), 1).batches).toEqual(['add:a', 'add:b']);
  });

  it('is empty for an empty queue', () => {
    expect(headSlices([], 5)).toEqual([]);
  });

  it('never ends with a profile added that was added then removed', () => {
    const r = simulate(
      rows(['add', 'a', 'b'], ['remove', 'a'], ['add', 'c'], ['remove', 'c'], ['add', 'c']),
      100,
    );
    expect(r.batches).toEqual(['add:a,b', 'remove:a', 'add:c', 'remove:c', 'add:c']);
    expect(r.members).toEqual(['b', 'c']);
  });

  it('matches event-by-event application on random queues', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const spec: [EventKind, ...string[]][] = Array.from({ length: 1 + rand(20) }, () => {
        const r = rand(20);
        if (r === 0) return ['clear'] as [EventKind];
        const kind: EventKind = r < 11 ? 'add' : 'remove';
        return [kind, ...Array.from({ length: 1 + rand(6) }, () => `p${rand(8)}`)] as [
          EventKind,
          ...string[],
        ];
      });
      const expected = new Set<string>();
      for (const [kind, ...keys] of spec) {
        if (kind === 'clear') expected.clear();
        for (const k of keys) {
          if (kind === 'add') expected.add(k);
          if (kind === 'remove') expected.delete(k);
        }
      }
      const size = 1 + rand(10);
      const result = simulate(rows(...spec), size);
      expect(result.members).toEqual([...expected].sort());
      for (const b of result.batches)
        expect(b.split(':')[1]!.split(',').filter(Boolean).length).toBeLessThanOrEqual(size);
    }
  });
});

describe('isDue', () => {
  const base = {
    headKind: 'add' as EventKind,
    waitingProfiles: 10,
    oldestAt: new Date('2026-01-01T00:00:00Z'),
    batchSize: 100,
    timeoutMs: 10_000,
    now: new Date('2026-01-01T00:00:05Z'),
  };

  it('waits while the batch is not full and the oldest event is younger than the timeout', () => {
    expect(isDue(base)).toBe(false);
  });

  it('is due at batch.size profiles', () => {
    expect(isDue({ ...base, waitingProfiles: 100 })).toBe(true);
    expect(isDue({ ...base, waitingProfiles: 99 })).toBe(false);
  });

  it('is due once batch.timeout has passed since the oldest event', () => {
    expect(isDue({ ...base, now: new Date('2026-01-01T00:00:10Z') })).toBe(true);
    expect(isDue({ ...base, now: new Date('2026-01-01T00:00:09.999Z') })).toBe(false);
    expect(dueAt(base.oldestAt, base.timeoutMs).toISOString()).toBe('2026-01-01T00:00:10.000Z');
  });

  it('runs clear and segment events at once', () => {
    for (const headKind of ['clear', 'upsert_segment', 'delete_segment'] as const)
      expect(isDue({ ...base, headKind, waitingProfiles: 0 })).toBe(true);
  });
});

describe('backoff', () => {
  it('doubles from 5 s and holds at the maximum from the alerting attempt on', () => {
    expect([1, 2, 3, 4].map(backoffMs)).toEqual([5_000, 10_000, 20_000, 40_000]);
    expect(backoffMs(1)).toBe(BASE_BACKOFF_MS);
    expect(backoffMs(MAX_ATTEMPTS)).toBe(MAX_BACKOFF_MS);
    expect(backoffMs(50)).toBe(MAX_BACKOFF_MS);
    expect(nextAttemptAt(new Date('2026-01-01T00:00:00Z'), 2).toISOString()).toBe('2026-01-01T00:00:10.000Z');
  });
});
