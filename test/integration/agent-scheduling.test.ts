// The agent running the applied state in-process: schedules, a new apply picked up without a
// restart (added, disabled and removed mappings), the concurrency limit, crash leftovers resumed
// at start, and `--once`.
import { describe, expect, it } from 'vitest';
import { openStore } from '../../engine/store/index.js';
import { emptyRun } from '../../engine/sync/types.js';
import { AgentFixture, eventually } from './agent-fixture.js';

const mapping = (name: string, schedule: string, extra = '') => `
  ${name}:
    model: people
    destination: hook
    action: post
    batch_size: 25
    schedule: ${schedule}
    fields: { id: id, name: name }${extra}`;

const config = (mappings: string, agent = '{ listen: "127.0.0.1:0", lease: 5s, poll_interval: 300ms }') => `
settings:
  agent: ${agent}
sources:
  wh: { type: sqlite, path: wh.db }
models:
  people: { source: wh, primary_key: id, sql: "select id, name from people" }
destinations:
  hook: { type: webhook, url: "\${RECEIVER}" }
mappings:${mappings}
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('agent scheduling', () => {
  it('runs schedules, and follows a new apply without a restart', async () => {
    const f = await AgentFixture.create(
      config(mapping('every_second', '{ every: 1s }') + mapping('by_hand', 'manual')),
      40,
    );
    await f.apply();
    const a = await f.start();
    try {
      const runsOf = (m: string) => a.lines.filter((l) => l.event === 'run_finished' && l.mapping === m);
      await eventually(() => (runsOf('every_second').length >= 3 ? true : undefined));
      expect(runsOf('every_second').every((l) => l.trigger === 'schedule' && l.status === 'success')).toBe(
        true,
      );
      const starts = a.lines
        .filter((l) => l.event === 'run_started' && l.mapping === 'every_second')
        .map((l) => Date.parse(l.time as string));
      for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(900);

      // Apply: disable one mapping, add another with a cron schedule.
      await f.write(
        config(
          mapping('every_second', '{ every: 1s }', '\n    enabled: false') +
            mapping('by_hand', 'manual') +
            mapping('fresh', '{ cron: "* * * * * *" }'),
        ),
      );
      const applied = Date.now();
      await f.apply();
      const changed = await a.waitFor((l) => l.event === 'state_changed' && l.serial === 2);
      expect(Date.parse(changed.time as string) - applied).toBeLessThan(5_000);
      expect(changed.mappings).toEqual([
        { mapping: 'every_second', change: 'disabled' },
        { mapping: 'fresh', change: 'added' },
      ]);
      await eventually(() => (runsOf('fresh').length >= 2 ? true : undefined));
      const unfinished = () =>
        a.lines.filter(
          (l) =>
            l.event === 'run_started' &&
            l.mapping === 'every_second' &&
            !runsOf('every_second').some((r) => r.run_id === l.run_id),
        );
      await eventually(() => (unfinished().length === 0 ? true : undefined));
      const frozen = runsOf('every_second').length;

      // Apply: remove `fresh`.
      await f.write(
        config(
          mapping('every_second', '{ every: 1s }', '\n    enabled: false') + mapping('by_hand', 'manual'),
        ),
      );
      await f.apply();
      await a.waitFor((l) => l.event === 'state_changed' && l.serial === 3);
      await sleep(1500); // a run that had started may finish
      const freshRuns = runsOf('fresh').length;
      await sleep(2500);
      expect(runsOf('fresh').length).toBe(freshRuns);
      expect(runsOf('every_second').length).toBe(frozen);
      expect(runsOf('by_hand')).toEqual([]);
      expect(
        (await a.call('/api/syncs?mapping_status=disabled')).body.runs.map(
          (r: { mapping: string }) => r.mapping,
        ),
      ).toEqual(['every_second']);
      expect((await a.call('/api/syncs?all=1&mapping=fresh&limit=1')).body.runs[0].mapping_status).toBe(
        'removed',
      );
    } finally {
      a.agent.stop();
      expect(await a.agent.exited).toBe(0);
      await f.close();
    }
  });

  it('never runs more syncs at once than the concurrency limit', async () => {
    const f = await AgentFixture.create(
      config(['a', 'b', 'c', 'd'].map((m) => mapping(m, '{ every: 1s }')).join('')),
      100,
    );
    f.receiver.delayMs = 40;
    await f.apply();
    const a = await f.start({ concurrency: 2 });
    try {
      const done = () => a.lines.filter((l) => l.event === 'run_finished');
      await eventually(
        () => (new Set(done().map((l) => l.mapping)).size === 4 && done().length >= 8 ? true : undefined),
        40_000,
      );
      // Overlap of whole runs across mappings, from the receiver's side.
      const spans = ['a', 'b', 'c', 'd'].flatMap((m) => f.receiver.runs(m));
      const points = spans.flatMap((s) => [
        { t: s.start, d: 1 },
        { t: s.end, d: -1 },
      ]);
      points.sort((x, y) => x.t - y.t || x.d - y.d);
      let open = 0;
      let max = 0;
      for (const p of points) {
        open += p.d;
        max = Math.max(max, open);
      }
      expect(max).toBe(2);
      for (const m of ['a', 'b', 'c', 'd']) expect(f.receiver.overlaps(m)).toEqual([]);
    } finally {
      a.agent.stop();
      expect(await a.agent.exited).toBe(0);
      await f.close();
    }
  });

  it('marks a run a dead process left in progress as abandoned, and resumes it at once', async () => {
    const f = await AgentFixture.create(config(mapping('hourly', '{ every: 1h }')), 30);
    await f.apply();
    const store = await openStore({ url: 'sqlite:.backflow/store.db', configDir: f.dir });
    const started = new Date(Date.now() - 5_000).toISOString();
    await store.insertRun(
      emptyRun({
        id: 'run_dead',
        mapping: 'hourly',
        model: 'people',
        source: 'wh',
        destination: 'hook',
        action: 'post',
        trigger: 'schedule',
        started_at: started,
      }),
    );
    await store.close();
    const a = await f.start();
    try {
      await a.waitFor((l) => l.event === 'run_abandoned' && l.run_id === 'run_dead');
      const resumed = await a.waitFor((l) => l.event === 'run_finished' && l.mapping === 'hourly');
      expect(resumed).toMatchObject({ trigger: 'retry', status: 'success', extract: { added: 30 } });
      const dead = (await a.call('/api/syncs/run_dead')).body;
      expect(dead).toMatchObject({ status: 'failed', errors: [{ code: 'abandoned', records: 0 }] });
      expect(dead.errors[0].recommended_action).toMatch(/next sync sends every record/);
      await sleep(1000);
      expect(a.lines.filter((l) => l.event === 'run_started')).toHaveLength(1); // then hourly again
    } finally {
      a.agent.stop();
      expect(await a.agent.exited).toBe(0);
      await f.close();
    }
  });

  it('--once runs what is due, skips manual mappings, and exits 1 when a run failed', async () => {
    const f = await AgentFixture.create(
      config(mapping('due', '{ every: 1h }') + mapping('by_hand', 'manual')),
      10,
    );
    await f.apply();
    const first = await f.start({ once: true });
    expect(await first.agent.exited).toBe(0);
    expect(first.lines.filter((l) => l.event === 'run_finished').map((l) => [l.mapping, l.status])).toEqual([
      ['due', 'success'],
    ]);
    expect(first.agent.address).toBeUndefined();

    const second = await f.start({ once: true }); // nothing due within the hour
    expect(await second.agent.exited).toBe(0);
    expect(second.lines.filter((l) => l.event === 'run_started')).toEqual([]);

    await f.write(config(mapping('due', '{ every: 1h }') + mapping('failing', '{ every: 1h }')));
    await f.apply();
    f.receiver.answer = () => 422;
    const third = await f.start({ once: true });
    expect(await third.agent.exited).toBe(1);
    expect(third.lines.find((l) => l.event === 'run_finished')).toMatchObject({
      mapping: 'failing',
      status: 'failed',
      level: 'error',
    });
    await f.close();
  });
});
