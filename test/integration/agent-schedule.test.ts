// The agent's pure decisions: when a mapping is due, when a failed one is retried, which
// addresses count as loopback, what an apply changed. No servers.
import { describe, expect, it } from 'vitest';
import { parseListen } from '../../engine/agent/http.js';
import {
  dueAt,
  MAX_EARLY_RETRIES,
  NEVER_RAN,
  nextScheduled,
  RETRY_BASE_MS,
  retryAt,
  timingOf,
} from '../../engine/agent/schedule.js';
import { mappingChanges } from '../../engine/agent/state-watch.js';
import type { StateDocument } from '../../engine/state/types.js';
import { emptyRun, type RunError, type SyncRun } from '../../engine/sync/types.js';

const T = Date.parse('2026-03-01T10:00:00.000Z');

function run(over: Partial<SyncRun> & { started: number; finished?: number; code?: string }): SyncRun {
  const base = emptyRun({
    id: `run_${over.started}`,
    mapping: 'm',
    model: 'x',
    source: 's',
    destination: 'd',
    action: 'upsert',
    trigger: 'schedule',
    started_at: new Date(over.started).toISOString(),
  });
  const errors: RunError[] = over.code
    ? [{ code: over.code, message: over.code, records: 0, recommended_action: '', sample_payloads: [] }]
    : [];
  return {
    ...base,
    status: over.status ?? 'success',
    finished_at: new Date(over.finished ?? over.started + 1000).toISOString(),
    errors,
  };
}

describe('nextScheduled', () => {
  it('never schedules manual mappings', () => {
    expect(nextScheduled('manual', undefined, T)).toBeUndefined();
    expect(nextScheduled(undefined, T - 1e6, T)).toBeUndefined();
  });

  it('runs a mapping that never ran at once, then every interval from the last start', () => {
    expect(nextScheduled({ every: '15m' }, undefined, T)).toBe(T);
    expect(nextScheduled({ every: '15m' }, T, T + 1)).toBe(T + 15 * 60_000);
    expect(nextScheduled({ every: '1s' }, T, T)).toBe(T + 1000);
  });

  it('takes the next cron time after the last start, in the schedule time zone', () => {
    expect(nextScheduled({ cron: '*/15 * * * *' }, T + 500, T + 1000)).toBe(T + 15 * 60_000);
    // 03:00 in Berlin (UTC+1 in March before DST) is 02:00 UTC.
    const next = nextScheduled({ cron: '0 3 * * *', timezone: 'Europe/Berlin' }, T, T);
    expect(new Date(next!).toISOString()).toBe('2026-03-02T02:00:00.000Z');
  });

  it('catches a missed cron time up with one run, not many', () => {
    const lastStart = T - 3 * 3_600_000; // three hourly times missed
    const next = nextScheduled({ cron: '0 * * * *' }, lastStart, T);
    expect(next).toBe(T - 2 * 3_600_000); // due (in the past): one run now
    expect(
      dueAt({ schedule: { cron: '0 * * * *' } }, timingOf([run({ started: lastStart })]), T)?.at,
    ).toBeLessThanOrEqual(T);
  });
});

describe('retries', () => {
  it('resumes an abandoned or interrupted run at once', () => {
    for (const code of ['abandoned', 'interrupted']) {
      const t = timingOf([run({ started: T, finished: T + 2000, status: 'failed', code })]);
      expect(retryAt(t)).toBe(T + 2000);
    }
  });

  it('backs off a failed run 30s, 1m, 2m … then leaves it to the schedule', () => {
    const runs: SyncRun[] = [];
    for (let i = 0; i < MAX_EARLY_RETRIES + 1; i++) {
      runs.unshift(run({ started: T + i * 1e6, status: 'failed', code: 'connection_failed' }));
      const t = timingOf(runs);
      expect(t.failures).toBe(i + 1);
      const expected = i + 1 > MAX_EARLY_RETRIES ? undefined : t.lastFinish! + RETRY_BASE_MS * 2 ** i;
      expect(retryAt(t)).toBe(expected);
    }
  });

  it('counts only the failures in a row, newest first', () => {
    const t = timingOf([
      run({ started: T + 3, status: 'failed', code: 'query_failed' }),
      run({ started: T + 2, status: 'success' }),
      run({ started: T + 1, status: 'failed', code: 'query_failed' }),
    ]);
    expect(t.failures).toBe(1);
  });

  it('leaves partial successes to the next scheduled run', () => {
    const t = timingOf([run({ started: T, status: 'partial_success' })]);
    expect(retryAt(t)).toBeUndefined();
    expect(dueAt({ schedule: { every: '1h' } }, t, T)).toEqual({ at: T + 3_600_000, trigger: 'schedule' });
  });

  it('picks the earlier of retry and schedule, and never runs manual or disabled mappings', () => {
    const failed = timingOf([
      run({ started: T, finished: T + 1000, status: 'failed', code: 'connection_failed' }),
    ]);
    expect(dueAt({ schedule: { every: '1h' } }, failed, T)).toEqual({
      at: T + 1000 + RETRY_BASE_MS,
      trigger: 'retry',
    });
    expect(dueAt({ schedule: { every: '10s' } }, failed, T)).toEqual({ at: T + 10_000, trigger: 'schedule' });
    expect(dueAt({ schedule: 'manual' }, failed, T)).toBeUndefined();
    expect(dueAt({ schedule: { every: '1s' }, enabled: false }, NEVER_RAN, T)).toBeUndefined();
    expect(dueAt({ schedule: { every: '1s' } }, NEVER_RAN, T)).toEqual({ at: T, trigger: 'schedule' });
  });
});

describe('parseListen', () => {
  it('knows loopback from the rest', () => {
    expect(parseListen('127.0.0.1:7465')).toEqual({ host: '127.0.0.1', port: 7465, loopback: true });
    expect(parseListen('localhost:0')).toMatchObject({ loopback: true, port: 0 });
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080, loopback: true });
    expect(parseListen('0.0.0.0:7465')).toMatchObject({ loopback: false });
    expect(parseListen(':7465')).toEqual({ host: '0.0.0.0', port: 7465, loopback: false });
    expect(parseListen('[::]:7465')).toMatchObject({ host: '::', loopback: false });
    expect(parseListen('10.0.0.5:80')).toMatchObject({ loopback: false });
  });

  it('refuses what is not HOST:PORT, naming the flag', () => {
    for (const bad of ['7465', 'host', '1.2.3.4:99999', 'a:b'])
      expect(() => parseListen(bad)).toThrow(/--listen/);
  });
});

describe('mappingChanges', () => {
  const state = (serial: number, mappings: Record<string, Record<string, unknown>>): StateDocument => ({
    version: 1,
    serial,
    lineage: 'l',
    pending_effects: [],
    resources: Object.entries(mappings).map(([name, body]) => ({
      address: `mapping.${name}`,
      kind: 'mapping',
      name,
      body,
    })),
  });

  it('names what an apply added, removed, enabled, disabled or changed', () => {
    const before = state(1, {
      a: { enabled: true },
      b: { enabled: true },
      c: { enabled: false },
      d: { batch_size: 1 },
    });
    const after = state(2, {
      a: { enabled: true },
      b: { enabled: false },
      c: { enabled: true },
      d: { batch_size: 2 },
      e: {},
    });
    expect(mappingChanges(before, after)).toEqual([
      { mapping: 'b', change: 'disabled' },
      { mapping: 'c', change: 'enabled' },
      { mapping: 'd', change: 'changed' },
      { mapping: 'e', change: 'added' },
    ]);
    expect(mappingChanges(after, null).map((c) => c.change)).toEqual([
      'removed',
      'removed',
      'removed',
      'removed',
      'removed',
    ]);
  });
});
