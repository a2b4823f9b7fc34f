// Alerts end to end in-process, against real protocol peers: an SMTP server (smtp-server, messages
// parsed as received) and an HTTP server answering like Slack's incoming webhook. A mapping is
// broken, fails every five minutes on an injected clock, is fixed, and what arrives is counted.
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listDeliveries } from '../../engine/alerts/deliveries.js';
import { listNotifications, markNotificationsRead } from '../../engine/alerts/in-app.js';
import { listIncidents } from '../../engine/alerts/incidents.js';
import { describeAlerts } from '../../engine/alerts/list.js';
import { type SlackPeer, startSlackPeer } from '../harness/slack-peer.js';
import { type SmtpPeer, startSmtpPeer } from '../harness/smtp-peer.js';
import { type Workspace, workspace } from './alerts-workspace.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

const ALL_CHANNELS = `
alerts:
  oncall:
    on: [failed, partial_success]
    mappings: [people_to_dest]
    email:
      to: [data@example.com, oncall@example.com]
      from: backflow@example.com
      smtp: { url: "\${env:ALERT_SMTP_URL}" }
    slack: { webhook_url: "\${env:ALERT_SLACK_URL}", channel: "#data-alerts" }
    in_app: true
`;

/** A loopback port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let smtp: SmtpPeer;
let slack: SlackPeer;
const open: Workspace[] = [];

beforeAll(async () => {
  smtp = await startSmtpPeer();
  slack = await startSlackPeer();
});
afterAll(async () => {
  await smtp.stop();
  await slack.stop();
});
afterEach(async () => {
  while (open.length) await open.pop()!.close();
  smtp.messages.length = 0;
  slack.posts.length = 0;
  slack.queue.length = 0;
});

async function ws(yaml: string): Promise<Workspace> {
  const w = await workspace(yaml);
  open.push(w);
  return w;
}

describe('alerts: no storms, no gaps', () => {
  it('one alert, one reminder after 24h, one recovered — by email, Slack and in-app', async () => {
    process.env.ALERT_SMTP_URL = smtp.url;
    process.env.ALERT_SLACK_URL = slack.url;
    const w = await ws(ALL_CHANNELS);
    expect((await w.sync()).status).toBe('success');
    expect(smtp.messages).toHaveLength(0);

    w.wh.exec('alter table people rename to people_gone'); // the model's query now fails
    const runs = [];
    for (let t = 0; t <= 24 * HOUR; t += 5 * MIN) {
      w.advance(5 * MIN);
      runs.push(await w.sync());
    }
    expect(runs.every((r) => r.status === 'failed')).toBe(true);
    // An out-of-scope mapping failing says nothing.
    expect((await w.sync('people_audit')).status).toBe('failed');

    w.wh.exec('alter table people_gone rename to people');
    w.advance(5 * MIN);
    expect((await w.sync()).status).toBe('success');
    w.advance(5 * MIN);
    expect((await w.sync()).status).toBe('success');

    expect(smtp.messages.map((m) => m.subject)).toEqual([
      '[backflow] people_to_dest failed',
      '[backflow] people_to_dest still failed (reminder)',
      '[backflow] people_to_dest recovered',
    ]);
    expect(slack.posts).toHaveLength(3);
    const notes = await listNotifications({ store: w.store });
    expect(notes.map((n) => n.kind)).toEqual(['recovered', 'reminder', 'alert']);

    // The first email: envelope, headers, and what it says.
    const first = smtp.messages[0]!;
    expect(first.user).toBe('alerts');
    expect(first.from).toBe('backflow@example.com');
    expect(first.to).toEqual(['data@example.com', 'oncall@example.com']);
    expect(first.headers.get('x-backflow-run')).toBe(runs[0]!.id);
    expect(first.text).toContain('Mapping people_to_dest failed: the run could not complete (query_failed');
    expect(first.text).toMatch(/Extracted\s+0 \(0 added, 0 updated, 0 deleted\)/);
    expect(first.text).toContain('- query_failed');
    expect(first.text).toContain(`Recommended action: ${runs[0]!.errors[0]!.recommended_action}`);
    expect(first.text).toContain(`More: backflow syncs show ${runs[0]!.id}`);
    expect(first.html).toContain('<h2');
    expect(first.html).toContain('[backflow] people_to_dest failed');
    expect(first.html).toContain('no such table: people');

    // The reminder came with the first failing run at or after 24h, and says since when.
    const reminderRun = runs[24 * 12]!;
    expect(smtp.messages[1]!.headers.get('x-backflow-run')).toBe(reminderRun.id);
    expect(smtp.messages[1]!.text).toContain(`since ${runs[0]!.finished_at}, 289 failing runs`);
    expect(smtp.messages[2]!.text).toMatch(
      /recovered: run \S+ ended success \(no changes to load\) after 289 failing runs since/,
    );

    // Slack: Block Kit with the same facts, to the configured channel.
    const post = slack.posts[0]!.body as { channel: string; text: string; blocks: Record<string, unknown>[] };
    expect(slack.posts[0]!.contentType).toBe('application/json');
    expect(post.channel).toBe('#data-alerts');
    expect(post.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: '[backflow] people_to_dest failed', emoji: false },
    });
    const blocks = JSON.stringify(post.blocks);
    expect(blocks).toContain('*Mapping*\\npeople_to_dest');
    expect(blocks).toContain('query_failed');
    expect(blocks).toContain('_Recommended action:_');
    expect(blocks).toContain(`backflow syncs show ${runs[0]!.id}`);

    // In-app: unread until read.
    expect(notes.every((n) => n.read_at === null)).toBe(true);
    expect(notes[2]!.facts).toContainEqual({ label: 'Mapping', value: 'people_to_dest' });
    expect(await markNotificationsRead({ store: w.store, ids: [notes[2]!.id] })).toEqual([notes[2]!.id]);
    expect(await listNotifications({ store: w.store, unread: true })).toHaveLength(2);
    expect(await markNotificationsRead({ store: w.store, ids: [9999] })).toEqual([]);

    // Every delivery recorded as sent; the incident is closed.
    const deliveries = await listDeliveries({ store: w.store });
    expect(deliveries).toHaveLength(9);
    expect(deliveries.every((d) => d.status === 'sent' && d.attempts === 1)).toBe(true);
    expect(await listIncidents({ store: w.store })).toEqual([]);
  });

  it('an alert hears the statuses it is on; a run that is neither failing nor a success changes nothing', async () => {
    const w = await ws(`
alerts:
  watchers:
    on: [failed, partial_success]
    repeat_after: 1h
    in_app: true
  hard_failures:
    on: [failed]
    mappings: [people_to_dest]
    in_app: true
`);
    w.dest.exec("insert into chaos values ('grace')");
    const partial = await w.sync();
    expect(partial.status).toBe('partial_success');
    w.advance(5 * MIN);
    expect((await w.sync()).status).toBe('failed'); // only the pending record is retried, and fails again
    w.advance(5 * MIN);
    w.wh.exec("update people set name = 'ada l.' where id = 1");
    expect((await w.sync()).status).toBe('partial_success'); // hard_failures: neither failing nor recovered
    const [summary] = await describeAlerts({ state: w.state, store: w.store });
    expect(summary).toMatchObject({
      name: 'hard_failures',
      mappings: ['people_to_dest'],
      segment_integrations: null,
    });
    expect(summary!.incidents).toMatchObject([
      { topic: 'mapping.people_to_dest', status: 'failed', failing_runs: 1 },
    ]);

    w.dest.exec('delete from chaos');
    w.advance(5 * MIN);
    expect((await w.sync()).status).toBe('success');
    const notes = await listNotifications({ store: w.store });
    expect(notes.map((n) => `${n.alert}: ${n.title}`).reverse()).toEqual([
      'watchers: [backflow] people_to_dest partial_success',
      'hard_failures: [backflow] people_to_dest failed',
      'hard_failures: [backflow] people_to_dest recovered',
      'watchers: [backflow] people_to_dest recovered',
    ]);
    const first = notes[3]!;
    expect(first.summary).toBe('Mapping people_to_dest partially succeeded: 1 record of 3 failed to load.');
    expect(first.errors[0]).toMatchObject({
      records: 1,
      message: expect.stringContaining('rejected by the destination'),
    });
    expect(notes[0]!.summary).toContain('after 3 failing runs since 2026-03-02T09:00:00.000Z');

    const [, watchers] = await describeAlerts({ state: w.state, store: w.store });
    expect(watchers).toMatchObject({
      name: 'watchers',
      on: ['failed', 'partial_success'],
      mappings: 'all',
      segment_integrations: null,
      repeat_after: '1h',
      recipients: { email: null, slack: null, in_app: true },
      incidents: [],
      deliveries: { pending: 0, failed: 0 },
    });
  });

  it('an unreachable SMTP server and Slack endpoint never fail the run; delivery is retried later', async () => {
    const [smtpPort, slackPort] = [await freePort(), await freePort()];
    process.env.ALERT_SMTP_URL = `smtp://alerts:s3cret%3Apw@127.0.0.1:${smtpPort}`;
    process.env.ALERT_SLACK_URL = `http://127.0.0.1:${slackPort}/services/T000/B000/XXXXXXXXXXXXXXXX`;
    const w = await ws(ALL_CHANNELS);
    w.wh.exec('alter table people rename to people_gone');
    const run = await w.sync();
    expect(run.status).toBe('failed');
    expect(run.errors.map((e) => e.code)).toEqual(['query_failed']);
    let deliveries = await listDeliveries({ store: w.store });
    expect(deliveries.map((d) => [d.channel, d.status, d.attempts])).toEqual([
      ['slack', 'pending', 3],
      ['email', 'pending', 3],
      ['in_app', 'sent', 1],
    ]);
    expect(deliveries[0]!.last_error).toMatch(/ECONNREFUSED/);
    expect(deliveries[0]!.last_error).not.toContain('XXXXXXXX'); // the webhook URL is a secret
    expect(w.log.join('\n')).toMatch(
      /email \(data@example.com, oncall@example.com\): not delivered yet .*retrying in 60s/,
    );

    // The channels come up; the next run (still failing: no new alert) retries what is due.
    const lateSmtp = await startSmtpPeer({ port: smtpPort });
    const lateSlack = await startSlackPeer({ port: slackPort });
    try {
      w.advance(30_000);
      await w.sync();
      expect(lateSmtp.messages).toHaveLength(0); // not due yet (backoff 60s)
      w.advance(60_000);
      await w.sync();
      expect(lateSmtp.messages.map((m) => m.subject)).toEqual(['[backflow] people_to_dest failed']);
      expect(lateSmtp.messages[0]!.headers.get('x-backflow-run')).toBe(run.id);
      expect(lateSlack.posts).toHaveLength(1);
      deliveries = await listDeliveries({ store: w.store });
      expect(deliveries.map((d) => [d.channel, d.status, d.attempts])).toEqual([
        ['slack', 'sent', 4],
        ['email', 'sent', 4],
        ['in_app', 'sent', 1],
      ]);
      expect((await listNotifications({ store: w.store })).length).toBe(1);
    } finally {
      await lateSmtp.stop();
      await lateSlack.stop();
    }
  });

  it('retries Slack 500s inline, gives up on answers that will not change, and survives a rejected recipient', async () => {
    process.env.ALERT_SMTP_URL = smtp.url;
    process.env.ALERT_SLACK_URL = slack.url;
    smtp.rejectRecipients.add('oncall@example.com');
    try {
      const w = await ws(ALL_CHANNELS);
      slack.queue.push({ status: 500, body: 'internal_error' });
      w.wh.exec('alter table people rename to people_gone');
      await w.sync();
      let [slackDelivery, emailDelivery] = await listDeliveries({ store: w.store });
      expect(slackDelivery).toMatchObject({ channel: 'slack', status: 'sent', attempts: 2 });
      expect(emailDelivery).toMatchObject({
        status: 'sent',
        last_error: 'rejected by the server: oncall@example.com',
      });
      expect(smtp.messages[0]!.to).toEqual(['data@example.com']);

      // A webhook Slack no longer knows: failed at once, not retried.
      w.wh.exec('alter table people_gone rename to people');
      w.advance(5 * MIN);
      await w.sync(); // recovered
      slack.queue.push({ status: 404, body: 'no_service' });
      smtp.rejectRecipients.add('data@example.com');
      w.wh.exec('alter table people rename to people_gone');
      w.advance(5 * MIN);
      await w.sync();
      [slackDelivery, emailDelivery] = await listDeliveries({ store: w.store });
      expect(slackDelivery).toMatchObject({
        status: 'failed',
        attempts: 1,
        last_error: 'slack: HTTP 404 no_service',
      });
      expect(emailDelivery).toMatchObject({ status: 'failed', attempts: 1 });
      expect(emailDelivery!.last_error).toMatch(/^smtp: .*mailbox unavailable/);
    } finally {
      smtp.rejectRecipients.clear();
    }
  });

  it('an inline SMTP password, redacted in state, is taken from the config files while it is the applied one', async () => {
    const w = await ws(`
alerts:
  inline:
    on: [failed]
    email: { to: [data@example.com], smtp: { url: "${smtp.url}" } }
`);
    const applied = w.state.resources.find((r) => r.address === 'alert.inline')!;
    expect(JSON.stringify(applied.body)).not.toContain('s3cret');
    expect(applied.sensitive_digest).toMatch(/^[0-9a-f]{64}$/);
    w.wh.exec('alter table people rename to people_gone');
    await w.sync();
    expect(smtp.messages.map((m) => [m.user, m.subject])).toEqual([
      ['alerts', '[backflow] people_to_dest failed'],
    ]);

    // The files now hold another password than the one applied: nothing is sent with either.
    await writeFile(
      join(w.dir, 'main.yaml'),
      (await readFile(join(w.dir, 'main.yaml'), 'utf8')).replace('s3cret', 'changed'),
    );
    w.wh.exec('alter table people_gone rename to people');
    w.advance(5 * MIN);
    await w.sync();
    const [recovered] = await listDeliveries({ store: w.store });
    expect(recovered).toMatchObject({ kind: 'recovered', status: 'pending' });
    expect(recovered!.last_error).toContain('alert.inline holds an inline password');
    expect(smtp.messages).toHaveLength(1);
  });

  it('a missing environment variable leaves the delivery pending with the variable named', async () => {
    delete process.env.ALERT_SMTP_URL;
    process.env.ALERT_SLACK_URL = slack.url;
    const w = await ws(ALL_CHANNELS);
    w.wh.exec('alter table people rename to people_gone');
    expect((await w.sync()).status).toBe('failed');
    const email = (await listDeliveries({ store: w.store })).find((d) => d.channel === 'email')!;
    expect(email).toMatchObject({ status: 'pending', attempts: 3 });
    expect(email.last_error).toBe('environment variable ALERT_SMTP_URL is not set (needed by alert.oncall)');
    expect(slack.posts).toHaveLength(1);
  });
});
