import type { RunRecord, SyncRun } from '../../engine/sync/types.js';
import { plain, type Style } from './style.js';

export function statusText(status: string, s: Style): string {
  switch (status) {
    case 'success':
      return s.green('success');
    case 'partial_success':
      return s.yellow('partial_success');
    case 'failed':
      return s.red('failed');
    default:
      return status;
  }
}

/** A run's summary: status, duration, extract and load counts, errors with recommended actions. */
export function renderRunText(
  run: SyncRun,
  s: Style = plain,
  failedRecords: readonly RunRecord[] = [],
): string {
  const l = run.load;
  const e = run.extract;
  const secs = run.duration_ms === null ? 'running' : `${(run.duration_ms / 1000).toFixed(1)}s`;
  const lines = [
    `${s.bold(`Sync ${run.id}`)} of mapping ${run.mapping}: ${statusText(run.status, s)} (${secs}, trigger ${run.trigger})`,
    `  model ${run.model} (source ${run.source}) → destination ${run.destination} (${run.action})`,
    `  started ${run.started_at}${run.finished_at ? `, finished ${run.finished_at}` : ''}`,
    `  extracted ${e.total} records: ${e.added} added, ${e.updated} updated, ${e.deleted} deleted, ${e.total - e.added - e.updated - e.deleted} unchanged`,
    `  loaded ${l.succeeded} of ${l.attempted}: added ${l.added.succeeded}/${l.added.succeeded + l.added.failed}, updated ${l.updated.succeeded}/${l.updated.succeeded + l.updated.failed}, deleted ${l.deleted.succeeded}/${l.deleted.succeeded + l.deleted.failed}${l.failed ? s.red(` — ${l.failed} failed`) : ''}`,
  ];
  for (const err of run.errors) {
    lines.push(
      `  ${s.red('✗')} ${err.code}: ${err.message}${err.records ? ` (${err.records} record${err.records === 1 ? '' : 's'})` : ''}`,
    );
    lines.push(`      → ${err.recommended_action}`);
    for (const p of err.sample_payloads)
      lines.push(s.dim(`      sample: ${truncate(JSON.stringify(p), 200)}`));
  }
  if (failedRecords.length) {
    lines.push('', s.bold('Failed records:'));
    for (const r of failedRecords)
      lines.push(`  ${r.key}  ${r.change}  ${r.code ?? ''}: ${truncate(r.message ?? '', 160)}`);
  }
  return `${lines.join('\n')}\n`;
}

function truncate(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/** The overview table (`backflow syncs`). */
export function renderRunsTable(
  rows: readonly (SyncRun & { mapping_status?: string })[],
  s: Style = plain,
): string {
  if (rows.length === 0) return 'No sync runs match.\n';
  const header = [
    'LATEST SYNC',
    'STARTED',
    'MAPPING',
    'MODEL (SOURCE)',
    'DESTINATION',
    'ACTION',
    'MAPPING STATUS',
    'RUN',
  ];
  const data = rows.map((r) => [
    r.status,
    r.started_at.replace('T', ' ').slice(0, 19),
    r.mapping,
    `${r.model} (${r.source})`,
    r.destination,
    r.action,
    r.mapping_status ?? '',
    r.id,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...data.map((d) => d[i]!.length)));
  const fmt = (cells: string[], color = false) =>
    cells
      .map((c, i) => {
        const padded = c.padEnd(widths[i]!);
        return color && i === 0 ? padded.replace(c, statusText(c, s)) : padded;
      })
      .join('  ')
      .trimEnd();
  return `${[s.bold(fmt(header)), ...data.map((d) => fmt(d, true))].join('\n')}\n`;
}
