import { formatDiagnostic } from '../../engine/diagnostics.js';
import type { Effect, Plan, ResourceChange } from '../../engine/plan/types.js';
import { plain, type Style } from './style.js';

const SYMBOL = { create: '+', update: '~', delete: '-' } as const;
const VERB = {
  create: 'will be created',
  update: 'will be updated in-place',
  delete: 'will be destroyed',
} as const;

/** Terraform-style plan text: legend, one block per address, effects, closing summary line. */
export function renderPlanText(plan: Plan, s: Style = plain): string {
  const out: string[] = [];
  for (const d of plan.diagnostics) out.push(formatDiagnostic(d));
  if (plan.diagnostics.length) out.push('');
  if (plan.changes.length === 0) {
    out.push(`${s.green(s.bold('No changes.'))} Your configuration matches the applied state.`);
    if (plan.health?.length) out.push('', ...renderHealth(plan, s));
    return `${out.join('\n')}\n`;
  }
  out.push(
    'backflow compared your configuration with the applied state. Resource actions are indicated with the',
    'following symbols:',
  );
  const used = new Set(plan.changes.map((c) => c.action));
  if (used.has('create')) out.push(`  ${s.green('+')} create`);
  if (used.has('update')) out.push(`  ${s.yellow('~')} update in-place`);
  if (used.has('delete')) out.push(`  ${s.red('-')} destroy`);
  out.push('', 'backflow will perform the following actions:', '');
  for (const c of plan.changes) out.push(...renderChange(c, s), '');
  const effects = plan.changes.flatMap((c) => c.effects);
  if (effects.length) {
    out.push(s.bold('Effects on data:'));
    for (const e of effects) out.push(`  ${s.yellow('!')} ${describeEffect(e)}`);
    out.push('');
  }
  if (plan.health?.length) out.push(...renderHealth(plan, s), '');
  out.push(
    `${s.bold('Plan:')} ${plan.summary.create} to create, ${plan.summary.update} to update, ${plan.summary.delete} to delete.`,
  );
  return `${out.join('\n')}\n`;
}

function renderHealth(plan: Plan, s: Style): string[] {
  const lines = [s.bold('Health of the mappings this change touches:')];
  for (const h of plan.health ?? []) {
    const status =
      h.status === 'success' ? s.green(h.status) : h.status === 'in_progress' ? h.status : s.red(h.status);
    lines.push(`  mapping.${h.mapping}: last run ${status} at ${h.started_at} (${h.run_id})`);
  }
  return lines;
}

export function describeEffect(e: Effect): string {
  switch (e.kind) {
    case 'full_resync':
      return `mapping.${e.mapping}: full resync — the next sync sends every record, not only changes (${e.reason})${e.records !== undefined ? `; about ${e.records.toLocaleString('en-US')} records` : ''}`;
    case 'upsert_segment':
      return `segment.${e.segment}: upsert_segment runs on segment_integration.${e.integration}`;
    case 'delete_segment':
      return `segment.${e.segment}: delete_segment runs on segment_integration.${e.integration} — the segment is deleted downstream`;
    case 'mapping_enabled':
      return `mapping.${e.mapping}: scheduled syncs start`;
    case 'mapping_disabled':
      return `mapping.${e.mapping}: scheduled syncs stop`;
    case 'mapping_removed':
      return `mapping.${e.mapping}: removed — its syncs stop; records already loaded stay in the destination`;
  }
}

function renderChange(c: ResourceChange, s: Style): string[] {
  const color = c.action === 'create' ? s.green : c.action === 'update' ? s.yellow : s.red;
  const dot = c.address.indexOf('.');
  const kind = c.address.slice(0, dot);
  const name = c.address.slice(dot + 1);
  const lines = [s.bold(`  # ${c.address} ${VERB[c.action]}`)];
  if (c.action === 'delete' && c.reason) lines.push(`  # (because ${c.reason})`);
  lines.push(`  ${color(SYMBOL[c.action])} ${kind} "${name}" {`);
  if (c.action === 'update') {
    const width = Math.max(...c.diff.map((d) => d.path.length));
    for (const d of c.diff) {
      const sym = d.before === null ? s.green('+') : d.after === null ? s.red('-') : s.yellow('~');
      lines.push(`      ${sym} ${d.path.padEnd(width)} = ${value(d.before, 8)} -> ${value(d.after, 8)}`);
    }
  } else {
    const body = (c.action === 'create' ? c.after : c.before) ?? {};
    lines.push(...bodyLines(body, c.action === 'create' ? s.green('+') : s.red('-'), 6));
  }
  lines.push('    }');
  return lines;
}

function bodyLines(body: Readonly<Record<string, unknown>>, sym: string, indent: number): string[] {
  const keys = Object.keys(body);
  const width = Math.max(0, ...keys.map((k) => k.length));
  const pad = ' '.repeat(indent);
  return keys.map((k) => `${pad}${sym} ${k.padEnd(width)} = ${value(body[k], indent + 2)}`);
}

function value(v: unknown, indent: number): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') {
    if (!v.includes('\n')) return JSON.stringify(v);
    const pad = ' '.repeat(indent + 2);
    return `<<-EOT\n${v
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => pad + l)
      .join('\n')}\n${' '.repeat(indent)}EOT`;
  }
  if (typeof v === 'object') {
    const json = JSON.stringify(v);
    if (json.length <= 80) return json.replace(/,"/g, ', "').replace(/":/g, '": ');
    return JSON.stringify(v, null, 2).replace(/\n/g, `\n${' '.repeat(indent)}`);
  }
  return String(v);
}
