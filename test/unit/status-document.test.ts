// The status document's pure parts: how an entry follows runs (in any order, applied twice, beyond
// the 20-run window), where the file lives, CSV quoting, and the short-lived file lock.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../engine/errors.js';
import { nextMappingStatus } from '../../engine/status/document.js';
import { withFileLock } from '../../engine/status/file-lock.js';
import { csvField, csvLine } from '../../engine/status/history-export.js';
import { statusPathFor } from '../../engine/status/local.js';
import type { MappingStatus } from '../../engine/status/types.js';
import { emptyRun, type RunStatus, type SyncRun } from '../../engine/sync/types.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function run(n: number, status: RunStatus): SyncRun {
  const started = new Date(T0 + n * 60_000).toISOString();
  const base = emptyRun({
    id: `run_${String(n).padStart(4, '0')}`,
    mapping: 'm',
    model: 'people',
    source: 'wh',
    destination: 'crm',
    action: 'upsert',
    trigger: 'schedule',
    started_at: started,
  });
  const failedRecords = status === 'partial_success' ? 2 : 0;
  return {
    ...base,
    status,
    finished_at: new Date(T0 + n * 60_000 + 1_000).toISOString(),
    duration_ms: 1_000,
    extract: { total: 5, added: 5, updated: 0, deleted: 0 },
    load: {
      ...base.load,
      attempted: status === 'failed' ? 0 : 5,
      succeeded: status === 'failed' ? 0 : 5 - failedRecords,
      failed: failedRecords,
    },
    errors:
      status === 'success'
        ? []
        : [
            { code: 'small', message: 'x', records: 0, recommended_action: 'a', sample_payloads: [] },
            {
              code: 'big',
              message: 'y',
              records: failedRecords,
              recommended_action: 'b',
              sample_payloads: [],
            },
          ],
  };
}

/** Feeds runs one by one as the subscriber does, the store answering with its newest 40. */
function replay(runs: readonly SyncRun[], start?: MappingStatus): MappingStatus | undefined {
  let entry = start;
  const stored: SyncRun[] = [];
  for (const r of runs) {
    stored.push(r);
    const history = [...stored].sort((a, b) => (a.started_at < b.started_at ? 1 : -1)).slice(0, 40);
    entry = nextMappingStatus({ previous: entry, run: r, history, now: new Date(r.finished_at!) });
  }
  return entry;
}

describe('mapping entries', () => {
  it('follows success, partial success and failure', () => {
    const e = replay([run(1, 'success'), run(2, 'partial_success'), run(3, 'failed'), run(4, 'failed')])!;
    expect(e).toMatchObject({
      health: 'failing',
      consecutive_failures: 2,
      last_success_at: run(1, 'success').finished_at,
    });
    expect(e.recent_runs.map((r) => r.status)).toEqual(['failed', 'failed', 'partial_success', 'success']);
    const partial = replay([run(1, 'failed'), run(2, 'partial_success')])!;
    expect(partial).toMatchObject({ health: 'degraded', consecutive_failures: 0, last_success_at: null });
    expect(partial.last_run.top_error).toEqual({
      code: 'big',
      message: 'y',
      records: 2,
      recommended_action: 'b',
    });
  });

  it('counts a failure streak longer than the 20 runs it keeps', () => {
    const runs = [run(0, 'success'), ...Array.from({ length: 30 }, (_, i) => run(i + 1, 'failed'))];
    const e = replay(runs)!;
    expect(e.recent_runs).toHaveLength(20);
    expect(e.recent_runs[0]!.id).toBe('run_0030');
    expect(e.consecutive_failures).toBe(30);
    expect(e.last_success_at).toBe(runs[0]!.finished_at);
  });

  it('is unchanged by the same run applied twice', () => {
    const runs = Array.from({ length: 25 }, (_, i) => run(i, 'failed'));
    const e = replay(runs)!;
    const again = nextMappingStatus({
      previous: e,
      run: runs[24]!,
      history: runs.slice(5),
      now: new Date(e.updated_at),
    });
    expect(again).toEqual(e);
  });

  it('keeps the newest run as the last one when an older run finishes later', () => {
    const e = replay([run(1, 'success'), run(3, 'failed')])!;
    const late = nextMappingStatus({
      previous: e,
      run: run(2, 'success'),
      history: [],
      now: new Date(T0 + 9e6),
    });
    expect(late.last_run.id).toBe('run_0003');
    expect(late.consecutive_failures).toBe(1);
    expect(late.recent_runs.map((r) => r.id)).toEqual(['run_0003', 'run_0002', 'run_0001']);
    expect(late.last_success_at).toBe(run(2, 'success').finished_at);
  });
});

describe('status file location', () => {
  it('sits beside the state file', () => {
    expect(statusPathFor('/x/.backflow/state.json')).toBe('/x/.backflow/status.json');
    expect(statusPathFor('/x/state/prod.json')).toBe('/x/state/prod.status.json');
  });
});

describe('CSV fields', () => {
  it('quotes only what needs it and doubles quotes', () => {
    expect(csvField(null)).toBe('');
    expect(csvField(42)).toBe('42');
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField(' padded')).toBe('" padded"');
    expect(csvLine(['a', null, 'b"c'])).toBe('a,,"b""c"\r\n');
  });
});

describe('status lock file', () => {
  it('takes over a lock left by a process that is gone', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'backflow-lock-')), 'status.json.lock');
    // 2^22 + 1: above the largest pid Linux can hand out (pid_max is at most 2^22)
    await writeFile(path, JSON.stringify({ id: 'dead', pid: 4_194_305, host: hostname(), created: 'then' }));
    expect(await withFileLock({ path }, async () => 'ran')).toBe('ran');
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('waits for a live holder, then names it', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'backflow-lock-')), 'status.json.lock');
    await writeFile(path, JSON.stringify({ id: 'live', pid: process.pid, host: hostname(), created: 'now' }));
    const err = await withFileLock({ path, timeoutMs: 300 }, async () => 'ran').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(`pid ${process.pid} on ${hostname()}`);
    expect(JSON.parse(await readFile(path, 'utf8')).id).toBe('live');
  });

  it('serialises work inside one process too', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'backflow-lock-')), 'status.json.lock');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        withFileLock({ path }, async () => {
          most = Math.max(most, ++inside);
          await new Promise((r) => setTimeout(r, 5));
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
  });
});
