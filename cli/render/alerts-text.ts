import type { Notification } from '../../engine/alerts/in-app.js';
import type { AlertSummary } from '../../engine/alerts/list.js';
import type { Delivery } from '../../engine/alerts/types.js';
import { plain, type Style } from './style.js';

const scope = (v: 'all' | readonly string[]) => (v === 'all' ? 'all' : v.join(', '));

/** `backflow alerts list`: one block per alert with its triggers, scope, recipients and state. */
export function renderAlerts(alerts: readonly AlertSummary[], s: Style = plain): string {
  if (alerts.length === 0)
    return 'No alerts are applied. Add an `alerts:` section to the config and run `backflow apply`.\n';
  const out: string[] = [];
  for (const a of alerts) {
    const r = a.recipients;
    const rows: [string, string][] = [];
    const scopes = [
      ...(a.mappings !== null ? [`mappings: ${scope(a.mappings)}`] : []),
      ...(a.segment_integrations !== null ? [`segment integrations: ${scope(a.segment_integrations)}`] : []),
    ];
    rows.push(['scope', scopes.join('; ')]);
    if (r.email) rows.push(['email', `${r.email.to.join(', ')} (from ${r.email.from}, via ${r.email.smtp})`]);
    if (r.slack) rows.push(['slack', r.slack.channel ?? "the webhook's default channel"]);
    if (r.in_app) rows.push(['in-app', 'yes (backflow notifications)']);
    if (!r.email && !r.slack && !r.in_app)
      rows.push(['recipients', s.yellow('none: add email, slack or in_app')]);
    for (const i of a.incidents)
      rows.push([
        'failing',
        s.red(
          `${i.topic} (${i.status}) since ${i.since}, ${i.failing_runs} failing run${i.failing_runs === 1 ? '' : 's'}`,
        ),
      ]);
    if (a.deliveries.pending || a.deliveries.failed)
      rows.push([
        'deliveries',
        s.yellow(
          `${a.deliveries.pending} pending, ${a.deliveries.failed} failed (backflow alerts deliveries)`,
        ),
      ]);
    out.push(`${s.bold(a.name)}  on ${a.on.join(', ')} · reminder every ${a.repeat_after} while failing`);
    for (const [label, value] of rows) out.push(`  ${label.padEnd(10)}  ${value}`);
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** `backflow alerts deliveries`: the recorded deliveries as a table. */
export function renderDeliveries(rows: readonly Delivery[], s: Style = plain): string {
  if (rows.length === 0) return 'No deliveries recorded.\n';
  const header = [
    'ID',
    'CREATED',
    'ALERT',
    'TOPIC',
    'KIND',
    'CHANNEL',
    'TARGET',
    'STATUS',
    'ATTEMPTS',
    'LAST ERROR',
  ];
  const data = rows.map((d) => [
    String(d.id),
    d.created_at.replace('T', ' ').slice(0, 19),
    d.alert,
    d.topic,
    d.kind,
    d.channel,
    d.target,
    d.status,
    String(d.attempts),
    d.last_error ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...data.map((d) => d[i]!.length)));
  const color = (status: string, text: string) =>
    status === 'sent' ? s.green(text) : status === 'failed' ? s.red(text) : s.yellow(text);
  const fmt = (cells: string[], paint: boolean) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        return paint && i === 7 ? color(c, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  return `${[s.bold(fmt(header, false)), ...data.map((d) => fmt(d, true))].join('\n')}\n`;
}

/** `backflow notifications`: newest first, unread ones marked. */
export function renderNotifications(rows: readonly Notification[], unread: number, s: Style = plain): string {
  if (rows.length === 0) return 'No notifications.\n';
  const out: string[] = [];
  for (const n of rows) {
    const mark = n.read_at ? ' ' : s.cyan('●');
    const title = n.kind === 'recovered' ? s.green(n.title) : n.read_at ? n.title : s.bold(n.title);
    out.push(`${mark} #${n.id}  ${n.created_at.replace('T', ' ').slice(0, 19)}  ${title}`);
    out.push(`    ${n.summary}`);
    for (const e of n.errors.slice(0, 1)) out.push(s.dim(`    → ${e.recommended_action}`));
    out.push(s.dim(`    more: ${n.next_step}`));
  }
  out.push('', `${unread} unread. Mark read: backflow notifications read ID (or --all).`);
  return `${out.join('\n')}\n`;
}
