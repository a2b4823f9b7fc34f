// The alerts feature on a PostgreSQL runtime store (real server): incidents, concurrent openings
// by two processes sharing the store, deliveries claimed once, notifications read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch, retryDeliveries } from '../../engine/alerts/deliver.js';
import { listDeliveries } from '../../engine/alerts/deliveries.js';
import { countUnread, listNotifications, markNotificationsRead } from '../../engine/alerts/in-app.js';
import { listIncidents, type Observation, observe } from '../../engine/alerts/incidents.js';
import { describeAlerts } from '../../engine/alerts/list.js';
import { runMessage } from '../../engine/alerts/message.js';
import type { AppliedAlert } from '../../engine/alerts/types.js';
import type { StateDocument } from '../../engine/state/types.js';
import { openStore } from '../../engine/store/index.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { emptyRun } from '../../engine/sync/types.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { type SlackPeer, startSlackPeer } from '../harness/slack-peer.js';

const MIN = 60_000;
const t0 = Date.parse('2026-03-02T09:00:00Z');
const at = (minutes: number) => new Date(t0 + minutes * MIN);

let a: RuntimeStore;
let b: RuntimeStore;
let slack: SlackPeer;

const alertBody = {
  on: ['failed'],
  repeat_after: '1h',
  in_app: true,
  slack: { webhook_url: '${env:PG_SLACK_URL}', channel: '#pg' },
};
const alert: AppliedAlert = { name: 'oncall', body: alertBody as AppliedAlert['body'] };
const state: StateDocument = {
  version: 1,
  serial: 1,
  lineage: 'pg',
  pending_effects: [],
  resources: [{ address: 'alert.oncall', kind: 'alert', name: 'oncall', body: alertBody }],
};

describe.skipIf(!serverUrl('postgres'))('alerts on a PostgreSQL store', () => {
  beforeAll(async () => {
    const url = await freshDatabase('postgres', 'alerts_pg');
    a = await openStore({ url, configDir: '/nonexistent' });
    b = await openStore({ url, configDir: '/nonexistent' }); // a second agent on the same store
    slack = await startSlackPeer();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await slack?.stop();
  });

  const step = async (store: RuntimeStore, outcome: Observation['outcome'], minutes: number) =>
    (
      await observe({
        store,
        alert: 'oncall',
        topic: 'mapping.m',
        observation: {
          outcome,
          status: outcome === 'ok' ? 'success' : 'failed',
          runId: `r${minutes}`,
          at: at(minutes),
        },
        policy: { repeatAfterMs: 60 * MIN },
      })
    ).step;

  it('two processes observing the same first failure send one alert; the incident then runs its course', async () => {
    const first = await Promise.all([step(a, 'failing', 0), step(b, 'failing', 0)]);
    expect(first.map((s) => s.send).sort()).toEqual(['alert', null]);
    expect((await step(b, 'failing', 5)).send).toBeNull();
    expect((await step(a, 'failing', 60)).send).toBe('reminder');
    const [incident] = await listIncidents({ store: b });
    expect(incident).toMatchObject({
      failing_runs: 4, // both observations at 09:00 count, whichever way the race went
      opened_at: at(0).toISOString(),
      last_notified_at: at(60).toISOString(),
    });
    expect(typeof incident!.failing_runs).toBe('number');
    expect((await step(b, 'ok', 65)).send).toBe('recovered');
    expect(await listIncidents({ store: a })).toEqual([]);
  });

  it('a process that loses the race to open an incident counts its failure into the winner', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let inserted!: () => void;
    const holding = new Promise<void>((r) => {
      inserted = r;
    });
    const winner = b.sql.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO alert_incidents (alert, topic, status, notified_status, opened_at, last_failure_at,
           last_notified_at, failing_runs, last_run_id) VALUES ('oncall', 'mapping.race', 'failed', 'failed', ?, ?, ?, 1, 'w')`,
        [at(0).toISOString(), at(0).toISOString(), at(0).toISOString()],
      );
      inserted();
      await gate; // holds the uncommitted row while the other process observes
    });
    await holding;
    const loser = observe({
      store: a,
      alert: 'oncall',
      topic: 'mapping.race',
      observation: { outcome: 'failing', status: 'failed', runId: 'l', at: at(1) },
      policy: { repeatAfterMs: 60 * MIN },
    });
    await new Promise((r) => setTimeout(r, 200)); // the loser's insert now waits on the winner's row
    release();
    await winner;
    const { step } = await loser;
    expect(step.send).toBeNull();
    expect(step.next).toMatchObject({ failing_runs: 2, last_run_id: 'l', opened_at: at(0).toISOString() });
  });

  it('records deliveries, claims a pending one for one process only, and reads notifications', async () => {
    delete process.env.PG_SLACK_URL;
    const run = {
      ...emptyRun({
        id: 'run_pg',
        mapping: 'm',
        model: 'x',
        source: 's',
        destination: 'd',
        action: 'upsert',
        trigger: 'schedule',
        started_at: at(0).toISOString(),
      }),
      status: 'failed' as const,
      finished_at: at(0).toISOString(),
      duration_ms: 0,
    };
    const message = runMessage({ alert: 'oncall', kind: 'alert', run, incident: null, now: at(0) });
    const result = await dispatch({ store: a, alert, message, configDir: '/nonexistent', now: at(0) });
    expect(result.undelivered).toHaveLength(1);
    expect(result.undelivered[0]).toContain('PG_SLACK_URL is not set');

    process.env.PG_SLACK_URL = slack.url;
    const attempted = await Promise.all([
      retryDeliveries({ store: a, state, configDir: '/nonexistent', now: at(2) }),
      retryDeliveries({ store: b, state, configDir: '/nonexistent', now: at(2) }),
    ]);
    expect(attempted.sort()).toEqual([0, 1]);
    expect(slack.posts).toHaveLength(1);
    const deliveries = await listDeliveries({ store: b });
    expect(deliveries.map((d) => [d.channel, d.status, d.attempts, typeof d.id])).toEqual([
      ['slack', 'sent', 4, 'number'],
      ['in_app', 'sent', 1, 'number'],
    ]);

    const [note] = await listNotifications({ store: b, unread: true });
    expect(note).toMatchObject({ kind: 'alert', run_id: 'run_pg', read_at: null });
    expect(await countUnread(a)).toBe(1);
    expect(await markNotificationsRead({ store: a, now: at(3) })).toEqual([note!.id]);
    expect(await countUnread(b)).toBe(0);
    const [summary] = await describeAlerts({ state, store: a });
    expect(summary!.deliveries).toEqual({ pending: 0, failed: 0 });
  });
});
