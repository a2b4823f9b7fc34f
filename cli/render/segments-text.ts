/** Human output of the `segments` commands (JSON output prints the engine's objects as they are). */
import type {
  BatchOutcome,
  EnqueueResult,
  FlushReport,
  QueueDepth,
  RefreshReport,
  SegmentStats,
} from '../../engine/segments/index.js';
import type { Style } from './style.js';

const plural = (n: number, one: string, many = `${one}s`) =>
  `${n.toLocaleString('en')} ${n === 1 ? one : many}`;

/** One line per query run by a flush. */
export function renderBatch(o: BatchOutcome, style: Style): string {
  const what = o.profiles > 0 || o.kind === 'add' || o.kind === 'remove' ? plural(o.profiles, 'profile') : '';
  const head = `${o.integration}/${o.segment}  ${o.kind}${what ? ` ${what}` : ''}`;
  const resumed = o.resumed ? ' (resumed after an interruption)' : '';
  if (o.status === 'ok') return `${style.green('✓')} ${head} in ${o.duration_ms} ms${resumed}`;
  if (o.status === 'skipped') return `${style.yellow('!')} ${head}: ${o.error ?? 'skipped'}`;
  return `${style.red('✗')} ${head} failed (attempt ${o.attempt}${o.next_attempt_at ? `, next at ${o.next_attempt_at}` : ''})${resumed}: ${o.error ?? ''}`;
}

const REASONS: Readonly<Record<string, string>> = {
  not_due: 'not due yet (batch.size not reached, batch.timeout not passed) — due at',
  backoff: 'backing off after a failure — next attempt at',
  failed: 'failed — next attempt at',
  paused: 'integration paused (enabled: false): events keep queueing',
  locked: 'being flushed by another process',
  integration_missing: 'its integration is no longer in the applied state',
  aborted: 'interrupted',
};

export function renderFlush(r: FlushReport, style: Style): string {
  const lines: string[] = [];
  const total = r.queries + r.failed + r.batches.filter((b) => b.status === 'skipped').length;
  if (total === 0) lines.push('No batch was due.');
  else
    lines.push(
      `Flushed: ${plural(r.queries, 'query', 'queries')} succeeded (${plural(r.profiles, 'profile')})${r.failed ? `, ${style.red(`${r.failed} failed`)} (kept queued; retried with backoff)` : ''}.`,
    );
  for (const w of r.waiting)
    lines.push(
      `  waiting: ${w.integration}/${w.segment} — ${REASONS[w.reason] ?? w.reason}${w.until ? ` ${w.until}` : ''}`,
    );
  for (const w of r.warnings) lines.push(`${style.yellow('warning:')} ${w}`);
  return lines.join('\n');
}

export function renderEnqueue(r: EnqueueResult): string {
  const what =
    r.kind === 'add'
      ? `${plural(r.profiles, 'profile')} added to`
      : r.kind === 'remove'
        ? `${plural(r.profiles, 'profile')} removed from`
        : r.kind === 'clear'
          ? `${plural(r.profiles, 'member')} cleared from`
          : `${plural(r.profiles, 'member')} queued for a resync of`;
  const where = r.integrations.length
    ? `${plural(r.events, 'event')} queued for ${r.integrations.join(', ')}`
    : 'no integration covers this segment, so nothing was queued';
  return `${what} segment ${r.segment}: ${where}.${r.integrations.length ? '\nThe agent flushes them, or run `backflow segments flush`.' : ''}`;
}

export function renderRefresh(reports: readonly RefreshReport[]): string {
  if (reports.length === 0) return 'No segment takes its members from a model.';
  return reports
    .map(
      (r) =>
        `segment ${r.segment} (model ${r.model}): ${plural(r.rows, 'row')}; +${r.added} added, -${r.removed} removed, ~${r.changed} changed, ${r.unchanged} unchanged` +
        `${r.duplicates ? `; ${plural(r.duplicates, 'duplicate key')} ignored` : ''}${r.missing_key ? `; ${plural(r.missing_key, 'row')} without a key ignored` : ''}; ${plural(r.events, 'event')} queued`,
    )
    .join('\n');
}

export function renderStats(s: SegmentStats, style: Style): string {
  const lines = [
    `segment_integration.${s.integration} from ${s.since} to ${s.until}`,
    `  successful queries: ${s.successful_queries.toLocaleString('en')} (${plural(s.profiles, 'profile')})`,
    `  failed queries:     ${s.failed_queries === 0 ? '0' : style.red(s.failed_queries.toLocaleString('en'))}`,
  ];
  for (const [kind, c] of Object.entries(s.by_kind))
    lines.push(`    ${kind.padEnd(15)} ${c.ok} ok, ${c.failed} failed`);
  if (s.errors.length) {
    lines.push('  errors:');
    for (const e of s.errors)
      lines.push(
        `    ${e.time}  ${e.kind.padEnd(14)} ${e.segment}  ${e.message}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`,
      );
  }
  return lines.join('\n');
}

export function renderQueue(rows: readonly QueueDepth[]): string {
  if (rows.length === 0) return 'Every segment queue is empty.';
  const table = [
    ['INTEGRATION', 'SEGMENT', 'EVENTS', 'PROFILES', 'IN FLIGHT', 'OLDEST', 'STATUS'],
    ...rows.map((r) => [
      r.integration,
      r.segment,
      String(r.events),
      String(r.profiles),
      String(r.in_flight),
      r.oldest_at ?? '',
      r.missing
        ? 'integration removed'
        : r.paused
          ? 'paused'
          : r.attempts > 0
            ? `failing (attempt ${r.attempts}, next ${r.next_attempt_at ?? '?'}): ${r.last_error ?? ''}`
            : 'queued',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table
    .map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}
