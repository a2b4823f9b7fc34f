// Alerts through the built CLI (`npm run build` first): `backflow sync` alerts by email, Slack and
// in-app; `alerts list`, `alerts deliveries` and `notifications` show what was configured and sent.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SlackPeer, startSlackPeer } from '../harness/slack-peer.js';
import { type SmtpPeer, startSmtpPeer } from '../harness/smtp-peer.js';
import { MAPPINGS } from '../integration/alerts-workspace.js';
import { backflow } from './cli.js';

let dir: string;
let smtp: SmtpPeer;
let slack: SlackPeer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  smtp = await startSmtpPeer();
  slack = await startSlackPeer();
  env = { E2E_SMTP_URL: smtp.url, E2E_SLACK_URL: slack.url };
  dir = await mkdtemp(join(tmpdir(), 'backflow-e2e-alerts-'));
  await writeFile(
    join(dir, 'main.yaml'),
    `${MAPPINGS}
alerts:
  oncall:
    on: [failed, partial_success]
    mappings: [people_to_dest]
    email: { to: [data@example.com], smtp: { url: "\${env:E2E_SMTP_URL}" } }
    slack: { webhook_url: "\${env:E2E_SLACK_URL}", channel: "#data-alerts" }
    in_app: true
  segment_watch:
    on: [segment_failed]
    in_app: true
`,
  );
  const wh = new Database(join(dir, 'wh.db'));
  wh.exec("create table people (id integer primary key, name text); insert into people values (1, 'ada');");
  wh.close();
  const dest = new Database(join(dir, 'dest.db'));
  dest.exec(
    'create table people_copy (id text primary key, name text); create table people_audit (id text primary key, name text);',
  );
  dest.close();
});
afterAll(async () => {
  await smtp.stop();
  await slack.stop();
});

const cli = (...args: string[]) => backflow(['--dir', dir, ...args], { env });

describe('alerts through the built CLI', () => {
  it('lists alerts, alerts on a failed sync once, recovers, and manages notifications', async () => {
    const apply = await cli('apply', '--auto-approve');
    expect(apply.code, apply.stderr).toBe(0);

    const list = await cli('alerts', 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject([
      {
        name: 'oncall',
        on: ['failed', 'partial_success'],
        mappings: ['people_to_dest'],
        segment_integrations: null,
        repeat_after: '24h',
        recipients: {
          email: { to: ['data@example.com'], from: 'backflow@localhost', smtp: '${env:E2E_SMTP_URL}' },
          slack: { channel: '#data-alerts' },
          in_app: true,
        },
      },
      { name: 'segment_watch', mappings: null, segment_integrations: 'all' },
    ]);
    const text = await cli('alerts', 'list');
    expect(text.stdout).toContain('oncall  on failed, partial_success · reminder every 24h while failing');
    expect(text.stdout).toContain(
      'email       data@example.com (from backflow@localhost, via ${env:E2E_SMTP_URL})',
    );
    expect(text.stdout).toContain('slack       #data-alerts');
    expect(text.stdout).not.toContain(slack.url);

    const wh = new Database(join(dir, 'wh.db'));
    wh.exec('alter table people rename to people_gone');
    const failed = await cli('sync', 'people_to_dest', '--json');
    expect(failed.code).toBe(1);
    const run = JSON.parse(failed.stdout);
    expect(failed.stderr).toContain(
      'alert oncall: [backflow] people_to_dest failed → in-app #1; email (data@example.com): sent; slack (#data-alerts): sent',
    );
    const again = await cli('sync', 'people_to_dest');
    expect(again.code).toBe(1);
    expect(again.stderr).not.toContain('alert oncall');
    expect(smtp.messages.map((m) => m.subject)).toEqual(['[backflow] people_to_dest failed']);
    expect(smtp.messages[0]!.text).toContain(`More: backflow syncs show ${run.id}`);
    expect(slack.posts).toHaveLength(1);

    const failing = JSON.parse((await cli('alerts', 'list', '--json')).stdout);
    expect(failing[0].incidents).toMatchObject([
      { topic: 'mapping.people_to_dest', status: 'failed', failing_runs: 2 },
    ]);

    wh.exec('alter table people_gone rename to people');
    wh.close();
    const ok = await cli('sync', 'people_to_dest');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('alert oncall: [backflow] people_to_dest recovered');
    expect(smtp.messages.map((m) => m.subject)).toEqual([
      '[backflow] people_to_dest failed',
      '[backflow] people_to_dest recovered',
    ]);
    expect(slack.posts).toHaveLength(2);

    const notes = await cli('notifications', '--json');
    expect(JSON.parse(notes.stdout).map((n: { id: number; kind: string }) => [n.id, n.kind])).toEqual([
      [2, 'recovered'],
      [1, 'alert'],
    ]);
    const shown = await cli('notifications');
    expect(shown.stdout).toMatch(/● #1 {2}\S+ \S+ {2}\[backflow\] people_to_dest failed/);
    expect(shown.stdout).toContain('2 unread.');
    expect((await cli('notifications', 'read', '1')).stdout).toContain('Notification #1 marked read.');
    expect(JSON.parse((await cli('notifications', '--unread', '--json')).stdout)).toHaveLength(1);
    const missing = await cli('notifications', 'read', '99');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no notification #99');
    const neither = await cli('notifications', 'read');
    expect(neither.code).toBe(1);
    expect(neither.stderr).toContain('--all');
    expect((await cli('notifications', 'read', '--all')).stdout).toContain('1 notification(s) marked read.');

    const deliveries = await cli('alerts', 'deliveries', '--json');
    expect(
      JSON.parse(deliveries.stdout).map(
        (d: { kind: string; channel: string; status: string }) => `${d.kind} ${d.channel} ${d.status}`,
      ),
    ).toEqual([
      'recovered slack sent',
      'recovered email sent',
      'recovered in_app sent',
      'alert slack sent',
      'alert email sent',
      'alert in_app sent',
    ]);
    const table = await cli('alerts', 'deliveries', '--status', 'pending');
    expect(table.stdout).toBe('No deliveries recorded.\n');
  });
});
