// `segment_failed`: what the segments feature calls when a query fails after its retries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeliveries } from '../../engine/alerts/deliveries.js';
import { listNotifications } from '../../engine/alerts/in-app.js';
import { dispatchSegmentFailure } from '../../engine/alerts/segment.js';
import type { ResourceState } from '../../engine/plan/types.js';
import type { StateDocument } from '../../engine/state/types.js';
import { openStore } from '../../engine/store/index.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { type SlackPeer, startSlackPeer } from '../harness/slack-peer.js';

const MIN = 60_000;
let slack: SlackPeer;
let store: RuntimeStore;

const resource = (
  kind: ResourceState['kind'],
  name: string,
  body: Record<string, unknown>,
): ResourceState => ({
  address: `${kind}.${name}`,
  kind,
  name,
  body,
});

const state = (): StateDocument => ({
  version: 1,
  serial: 1,
  lineage: 'test',
  pending_effects: [],
  resources: [
    resource('connector', 'crm_mysql', { type: 'mysql', url: '${env:CRM_URL}' }),
    resource('segment', 'vip', { id: 42, name: 'VIP customers', key: 'CustomID', members: 'managed' }),
    resource('segment_integration', 'export_vips', { connector: 'crm_mysql', segments: ['vip'] }),
    resource('segment_integration', 'other', { connector: 'crm_mysql', segments: 'all' }),
    resource('alert', 'segments', {
      on: ['segment_failed'],
      segment_integrations: ['export_vips'],
      repeat_after: '1h',
      slack: { webhook_url: '${env:SEGMENT_SLACK_URL}', channel: '#crm' },
      in_app: true,
    }),
    resource('alert', 'runs_only', { on: ['failed'], repeat_after: '24h', in_app: true }),
  ],
});

beforeAll(async () => {
  slack = await startSlackPeer();
  process.env.SEGMENT_SLACK_URL = slack.url;
  store = await openStore({ url: 'sqlite::memory:', configDir: '/nonexistent' });
});
afterAll(async () => {
  await store.close();
  await slack.stop();
});

describe('dispatchSegmentFailure', () => {
  it('alerts once per integration incident, reminds after repeat_after, and starts over after a quiet spell', async () => {
    const t0 = Date.parse('2026-03-02T09:00:00Z');
    const log: string[] = [];
    const fail = (minutes: number, kind = 'add', integration = 'export_vips') =>
      dispatchSegmentFailure({
        store,
        state: state(),
        configDir: '/nonexistent',
        integration,
        segment: 'vip',
        kind,
        error: new Error("Table 'crm.mysegment' doesn't exist"),
        attempts: 5,
        now: new Date(t0 + minutes * MIN),
        log: (l) => log.push(l),
      });
    await fail(0);
    await fail(10, 'remove');
    await fail(20, 'add', 'other'); // out of scope
    await fail(61);
    await fail(100);
    await fail(300); // quiet for over an hour before: a new incident

    const notes = await listNotifications({ store });
    expect(notes.map((n) => [n.alert, n.kind, n.title]).reverse()).toEqual([
      ['segments', 'alert', '[backflow] segment integration export_vips failed'],
      ['segments', 'reminder', '[backflow] segment integration export_vips still failing (reminder)'],
      ['segments', 'alert', '[backflow] segment integration export_vips failed'],
    ]);
    const first = notes[2]!;
    expect(first.summary).toBe(
      'Segment integration export_vips: the add query for segment vip failed after 5 attempts; its profiles stay queued.',
    );
    expect(first.facts).toContainEqual({ label: 'Segment', value: 'vip (id 42, VIP customers)' });
    expect(first.facts).toContainEqual({ label: 'Connector', value: 'crm_mysql' });
    expect(first.errors[0]!.message).toBe("Table 'crm.mysegment' doesn't exist");
    expect(first.next_step).toBe('backflow segments stats export_vips --since 24h');
    expect(notes[1]!.summary).toContain('still failing since 2026-03-02T09:00:00.000Z (3 failed queries)');

    expect(slack.posts.map((p) => p.body.channel)).toEqual(['#crm', '#crm', '#crm']);
    expect(JSON.stringify(slack.posts[0]!.body.blocks)).toContain('*Query*\\nadd');
    expect((await listDeliveries({ store })).every((d) => d.status === 'sent')).toBe(true);
    expect(log).toEqual([]); // delivered: nothing to warn about
  });
});
