import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../engine/alerts/deliver.js';
import { renderHtml } from '../../engine/alerts/email.js';
import {
  type Incident,
  type IncidentPolicy,
  nextStep,
  type Observation,
} from '../../engine/alerts/incidents.js';
import { renderText, runMessage } from '../../engine/alerts/message.js';
import { slackPayload } from '../../engine/alerts/slack.js';
import { alertsForIntegration, alertsForMapping } from '../../engine/alerts/triggers.js';
import type { AppliedAlert } from '../../engine/alerts/types.js';
import { emptyRun, type SyncRun } from '../../engine/sync/types.js';

const MIN = 60_000;
const ids = { alert: 'oncall', topic: 'mapping.m' };
const policy: IncidentPolicy = { repeatAfterMs: 24 * 60 * MIN };
const t0 = Date.parse('2026-03-02T09:00:00Z');
const obs = (outcome: Observation['outcome'], minutes: number, status = 'failed'): Observation => ({
  outcome,
  status,
  runId: `r${minutes}`,
  at: new Date(t0 + minutes * MIN),
});

/** Feeds observations through the state machine; returns the messages it asked for. */
function replay(observations: readonly Observation[], p: IncidentPolicy = policy): string[] {
  let incident: Incident | null = null;
  const sent: string[] = [];
  for (const o of observations) {
    const step = nextStep(incident, o, p, ids);
    if (step.send) sent.push(`${step.send}@${(o.at.getTime() - t0) / MIN}`);
    incident = step.next;
  }
  return sent;
}

describe('storm control', () => {
  it('a mapping failing every five minutes for two days: one alert, a reminder per 24h, one recovery', () => {
    const runs = Array.from({ length: 2 * 24 * 12 + 1 }, (_, i) => obs('failing', i * 5));
    expect(replay([...runs, obs('ok', 2 * 24 * 60 + 5), obs('ok', 2 * 24 * 60 + 10)])).toEqual([
      'alert@0',
      'reminder@1440',
      'reminder@2880',
      'recovered@2885',
    ]);
  });

  it('counts failing runs, keeps the opening time, and a neutral run changes nothing', () => {
    const first = nextStep(null, obs('failing', 0, 'partial_success'), policy, ids);
    const second = nextStep(first.next, obs('failing', 5), policy, ids);
    expect(second.send).toBeNull();
    expect(second.next).toMatchObject({
      failing_runs: 2,
      status: 'failed',
      notified_status: 'partial_success',
      opened_at: '2026-03-02T09:00:00.000Z',
      last_run_id: 'r5',
    });
    const neutral = nextStep(second.next, obs('neutral', 10, 'partial_success'), policy, ids);
    expect(neutral).toEqual({ send: null, previous: second.next, next: second.next });
    expect(nextStep(null, obs('ok', 0), policy, ids)).toEqual({ send: null, previous: null, next: null });
  });

  it('segment topics: a failure after a quiet repeat_after is a new incident, not a reminder', () => {
    const p = { repeatAfterMs: 60 * MIN, closeAfterQuietMs: 60 * MIN };
    expect(
      replay(
        [obs('failing', 0), obs('failing', 30), obs('failing', 59), obs('failing', 61), obs('failing', 200)],
        p,
      ),
    ).toEqual(['alert@0', 'reminder@61', 'alert@200']);
  });
});

const alert = (name: string, body: Partial<AppliedAlert['body']>): AppliedAlert => ({
  name,
  body: { on: ['failed'], ...body } as AppliedAlert['body'],
});

describe('triggers', () => {
  it('scopes mapping alerts by mappings and segment alerts by segment_integrations', () => {
    const alerts = [
      alert('all_runs', { on: ['failed', 'partial_success'] }),
      alert('only_m', { mappings: ['m'] }),
      alert('segments', { on: ['segment_failed'], segment_integrations: ['crm'] }),
      alert('every_segment', { on: ['segment_failed', 'failed'] }),
    ];
    expect(alertsForMapping(alerts, 'm').map((a) => a.name)).toEqual(['all_runs', 'only_m', 'every_segment']);
    expect(alertsForMapping(alerts, 'other').map((a) => a.name)).toEqual(['all_runs', 'every_segment']);
    expect(alertsForIntegration(alerts, 'crm').map((a) => a.name)).toEqual(['segments', 'every_segment']);
    expect(alertsForIntegration(alerts, 'other').map((a) => a.name)).toEqual(['every_segment']);
  });
});

function failedRun(over: Partial<SyncRun> = {}): SyncRun {
  return {
    ...emptyRun({
      id: 'run_1',
      mapping: 'users_to_crm',
      model: 'users',
      source: 'wh',
      destination: 'crm',
      action: 'upsert',
      trigger: 'schedule',
      started_at: '2026-03-02T09:00:00.000Z',
    }),
    status: 'partial_success',
    finished_at: '2026-03-02T09:00:01.500Z',
    duration_ms: 1500,
    ...over,
  };
}

describe('messages', () => {
  it('keep record payloads and inline passwords out, and escape for HTML and Slack', () => {
    const run = failedRun({
      load: { ...failedRun().load, attempted: 10, succeeded: 6, failed: 4 },
      errors: [
        {
          code: 'a',
          message: 'x',
          records: 1,
          recommended_action: 'fix a',
          sample_payloads: [{ email: 'secret@pii' }],
        },
        {
          code: 'b',
          message: 'connect postgres://u:hunter2@db/x failed <b>',
          records: 3,
          recommended_action: 'fix b',
          sample_payloads: [],
        },
        { code: 'c', message: 'c', records: 2, recommended_action: 'fix c', sample_payloads: [] },
        { code: 'd', message: 'd', records: 0, recommended_action: 'fix d', sample_payloads: [] },
      ],
    });
    const m = runMessage({ alert: 'oncall', kind: 'alert', run, incident: null, now: new Date(t0) });
    expect(m.title).toBe('[backflow] users_to_crm partial_success');
    expect(m.summary).toBe('Mapping users_to_crm partially succeeded: 4 records of 10 failed to load.');
    expect(m.errors.map((e) => e.code)).toEqual(['b', 'c', 'a']);
    const all = [renderText(m), renderHtml(m), JSON.stringify(slackPayload(m, '#x'))].join('\n');
    expect(all).not.toContain('secret@pii');
    expect(all).not.toContain('hunter2');
    expect(renderHtml(m)).toContain('failed &lt;b&gt;');
    expect(JSON.stringify(slackPayload(m))).toContain('failed &lt;b&gt;');
    expect(renderText(m)).toContain('Loaded       10 attempted, 6 succeeded, 4 failed');
  });

  it('stay within Slack Block Kit limits', () => {
    const long = 'y'.repeat(5000);
    const run = failedRun({
      mapping: 'm'.repeat(200),
      errors: [{ code: 'x', message: long, records: 1, recommended_action: long, sample_payloads: [] }],
    });
    const p = slackPayload(
      runMessage({ alert: 'a', kind: 'alert', run, incident: null, now: new Date(t0) }),
      '#c',
    ) as {
      text: string;
      blocks: { type: string; text?: { text: string }; fields?: { text: string }[] }[];
    };
    expect(p.blocks[0]!.text!.text.length).toBeLessThanOrEqual(150);
    for (const b of p.blocks) {
      if (b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);
      for (const f of b.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(2000);
      expect(b.fields?.length ?? 0).toBeLessThanOrEqual(10);
    }
    expect(p.text.length).toBeLessThanOrEqual(3000);
  });
});

describe('retry backoff', () => {
  it('starts at a minute after the inline attempts and doubles up to an hour', () => {
    expect([3, 4, 5, 8, 20].map(retryDelayMs)).toEqual([60_000, 120_000, 240_000, 1_920_000, 3_600_000]);
  });
});
