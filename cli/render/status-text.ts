import { entryOf } from '../../engine/status/document.js';
import type { MappingStatus, StatusDocument } from '../../engine/status/types.js';
import { statusText } from './run-text.js';
import { plain, type Style } from './style.js';

const RECENT_SYMBOL: Readonly<Record<string, string>> = { success: '✓', partial_success: '~', failed: '✗' };

/** `backflow status`: one row per mapping (plus applied mappings that never ran), then integrations. */
export function renderStatusText(
  doc: StatusDocument,
  opts: { applied?: readonly string[]; where: string },
  s: Style = plain,
): string {
  const names = [...new Set([...Object.keys(doc.mappings), ...(opts.applied ?? [])])].sort();
  const out: string[] = [];
  if (names.length === 0) {
    out.push(`No runs recorded yet in the ${opts.where}.`);
  } else {
    out.push(s.bold(`Mappings (${opts.where}, updated ${short(doc.updated_at)}):`), '');
    const rows = names.map((name) => mappingRow(name, entryOf(doc, 'mapping', name), s, opts.applied));
    out.push(
      ...table(
        [
          'MAPPING',
          'LAST RUN',
          'FINISHED',
          'LOADED',
          'FAILED IN A ROW',
          'LAST SUCCESS',
          'RECENT (NEWEST FIRST)',
        ],
        rows,
        s,
      ),
    );
    const problems = names
      .map((n) => entryOf(doc, 'mapping', n))
      .filter((m): m is MappingStatus => !!m?.last_run.top_error);
    if (problems.length) out.push('');
    for (const m of problems) {
      const e = m.last_run.top_error!;
      out.push(
        `${s.red('✗')} ${m.mapping} (${m.last_run.id}): ${e.code}: ${e.message}${e.records ? ` (${e.records} record${e.records === 1 ? '' : 's'})` : ''}`,
        `    → ${e.recommended_action}`,
      );
    }
  }
  const integrations = Object.values(doc.segment_integrations);
  if (integrations.length) {
    out.push('', s.bold('Segment integrations (last 24 hours):'), '');
    out.push(
      ...table(
        ['INTEGRATION', 'QUEUE', 'LAST FLUSH', 'QUERIES OK', 'ERRORS', 'LAST ERROR'],
        integrations.map((i) => [
          i.integration,
          String(i.queue_depth),
          short(i.last_flush_at),
          String(i.successful_queries_24h),
          i.errors_24h ? s.red(String(i.errors_24h)) : '0',
          i.last_error
            ? `${short(i.last_error.at)} ${i.last_error.query}: ${oneLine(i.last_error.message)}`
            : '',
        ]),
        s,
      ),
    );
  }
  return `${out.join('\n')}\n`;
}

function mappingRow(
  name: string,
  m: MappingStatus | undefined,
  s: Style,
  applied?: readonly string[],
): string[] {
  const removed = applied && !applied.includes(name) ? ' (not applied)' : '';
  if (!m) return [name, 'no runs yet', '', '', '', '', ''];
  const l = m.last_run.load;
  return [
    `${name}${removed}`,
    statusText(m.last_run.status, s),
    short(m.last_run.finished_at ?? m.last_run.started_at),
    `${l.succeeded}/${l.attempted}`,
    String(m.consecutive_failures),
    m.last_success_at ? short(m.last_success_at) : 'never',
    m.recent_runs.map((r) => RECENT_SYMBOL[r.status] ?? '?').join(''),
  ];
}

function table(header: readonly string[], rows: readonly string[][], s: Style): string[] {
  const visible = (t: string) => t.replace(/\u001b\[[0-9;]*m/g, '').length;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const fmt = (cells: readonly string[]) =>
    cells
      .map((c, i) => c + ' '.repeat(Math.max(0, widths[i]! - visible(c))))
      .join('  ')
      .trimEnd();
  return [s.bold(fmt(header)), ...rows.map(fmt)];
}

function short(iso: string | null): string {
  return iso ? iso.replace('T', ' ').slice(0, 19) : '—';
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
}
