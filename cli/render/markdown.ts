// Markdown for pull-request comments (SPEC §7): the plan, the apply and a mapping's first sync.
// What a reviewer must see (summary, data effects, errors) sits outside the collapsible diff,
// and truncateComment keeps a comment within GitHub's size limit without breaking its structure.
import type { Diagnostic } from '../../engine/diagnostics.js';
import type { Effect, MappingHealth, Plan, ResourceChange } from '../../engine/plan/types.js';
import type { RunStatus, SyncRun } from '../../engine/sync/types.js';

/** GitHub refuses a comment body longer than this. */
export const GITHUB_COMMENT_LIMIT = 65_536;

/** How many items of one list (effects of a kind, health rows, errors) a comment shows before "and N more". */
const LIST_CAP = 50;

export interface PlanMarkdownOptions {
  /** The config directory as the repository names it (`.`, `configs/prod`): shown, and part of the marker. */
  readonly dir: string;
  readonly title?: string;
  /** The commit the plan was made for (shown in the footer). */
  readonly sha?: string;
  /** The workflow run (linked from the footer). */
  readonly runUrl?: string;
}

export interface ApplyMarkdownInput {
  /** The plan that was applied (or whose apply failed). */
  readonly plan: Plan;
  readonly dir: string;
  /** The state serial after the apply. */
  readonly serial?: number;
  /** Why the apply failed; absent when it succeeded. Never holds a secret (the caller's error message). */
  readonly error?: string;
  readonly sha?: string;
  readonly runUrl?: string;
  readonly title?: string;
}

export interface RunMarkdownOptions {
  readonly dir: string;
  readonly title?: string;
  /** How many error groups to show (default 5). */
  readonly topErrors?: number;
}

/** The hidden marker that finds a directory's plan comment again. */
export function planMarker(dir: string): string {
  return `<!-- backflow:plan dir=${markerValue(dir)} -->`;
}

/** The hidden marker of a directory's apply comment. */
export function applyMarker(dir: string): string {
  return `<!-- backflow:apply dir=${markerValue(dir)} -->`;
}

/** The hidden marker of a mapping's first-sync comment. */
export function firstSyncMarker(dir: string, mapping: string): string {
  return `<!-- backflow:first-sync dir=${markerValue(dir)} mapping=${markerValue(mapping)} -->`;
}

/** `N to create, N to update, N to delete` (the status description). */
export function planSummaryText(summary: Plan['summary']): string {
  return `${summary.create} to create, ${summary.update} to update, ${summary.delete} to delete`;
}

/** The plan as a pull-request comment. */
export function renderPlanMarkdown(plan: Plan, opts: PlanMarkdownOptions): string {
  const errors = plan.diagnostics.filter((d) => d.severity === 'error');
  const warnings = plan.diagnostics.filter((d) => d.severity === 'warning');
  const noChanges = plan.changes.length === 0;
  const icon = errors.length > 0 ? '❌' : noChanges ? '✅' : '📋';
  const title = opts.title ?? `backflow plan${opts.dir === '.' ? '' : ` · \`${code(opts.dir)}\``}`;
  const out: string[] = [planMarker(opts.dir), `## ${icon} ${title}`, ''];

  if (errors.length > 0) {
    out.push('> [!CAUTION]');
    out.push(`> **This plan has ${count(errors.length, 'error')}: \`backflow apply\` will refuse it.**`);
    out.push(...capped(errors, (d) => diagnosticLines(d, plan.dir, opts.dir), 'errors').map((l) => `> ${l}`));
    out.push('');
  }
  if (warnings.length > 0) {
    out.push('> [!WARNING]');
    out.push(`> ${count(warnings.length, 'warning')}:`);
    out.push(
      ...capped(warnings, (d) => diagnosticLines(d, plan.dir, opts.dir), 'warnings').map((l) => `> ${l}`),
    );
    out.push('');
  }

  out.push(
    noChanges
      ? `**No changes.** The configuration matches the applied state (serial ${plan.state.serial}).`
      : `**Plan: ${planSummaryText(plan.summary)}.**`,
  );
  out.push('');

  const effects = effectLines(plan.changes);
  if (effects.length > 0) out.push('### Data effects', '', ...effects, '');

  const health = healthLines(plan.health ?? []);
  if (health.length > 0) out.push('### Current health of the affected mappings', '', ...health, '');

  if (!noChanges) {
    out.push(
      `<details><summary>Full plan: ${count(plan.changes.length, 'change')}</summary>`,
      '',
      ...fenced('diff', diffLines(plan.changes)),
      '',
      '</details>',
      '',
    );
  }
  out.push(
    footer([
      `state serial ${plan.state.serial}`,
      plan.state.lineage ? `lineage \`${code(plan.state.lineage.slice(0, 8))}\`` : '',
      shaText(opts.sha),
      runLink(opts.runUrl),
    ]),
  );
  return finish(out);
}

export interface PlanFailureMarkdownInput {
  readonly dir: string;
  /** The absolute config directory (diagnostic paths are shown relative to it). */
  readonly configDir: string;
  /** Why no plan could be made: the config's diagnostics, or an error message. */
  readonly diagnostics: readonly Diagnostic[];
  readonly error?: string;
  readonly title?: string;
  readonly sha?: string;
  readonly runUrl?: string;
}

/** No plan could be made (invalid config, unreachable state): the same comment, now saying why. */
export function renderPlanFailureMarkdown(input: PlanFailureMarkdownInput): string {
  const { dir } = input;
  const title = input.title ?? `backflow plan${dir === '.' ? '' : ` · \`${code(dir)}\``}`;
  const errors = input.diagnostics.filter((d) => d.severity === 'error');
  const out: string[] = [planMarker(dir), `## ❌ ${title}`, '', '> [!CAUTION]'];
  out.push(
    errors.length > 0
      ? `> **No plan: the configuration has ${count(errors.length, 'error')}.**`
      : '> **No plan could be made.**',
  );
  out.push(
    ...capped(input.diagnostics, (d) => diagnosticLines(d, input.configDir, dir), 'problems').map(
      (l) => `> ${l}`,
    ),
  );
  if (input.error) out.push('', ...fenced('text', [redactUrls(input.error)]));
  out.push('', footer([shaText(input.sha), runLink(input.runUrl)]));
  return finish(out);
}

/** The result of an apply, on the pull request it came from. */
export function renderApplyMarkdown(input: ApplyMarkdownInput): string {
  const { plan, dir } = input;
  const failed = input.error !== undefined;
  const where = dir === '.' ? '' : ` · \`${code(dir)}\``;
  const title = input.title ?? (failed ? `backflow apply failed${where}` : `backflow apply${where}`);
  const out: string[] = [applyMarker(dir), `## ${failed ? '❌' : '✅'} ${title}`, ''];
  const s = plan.summary;
  const counts = `${s.create} created, ${s.update} updated, ${s.delete} deleted`;
  if (failed) {
    out.push(
      `The apply of **${planSummaryText(s)}** failed${input.sha ? ` at ${shaText(input.sha)}` : ''}:`,
      '',
    );
    out.push(...fenced('text', [redactUrls(input.error ?? '')]), '');
  } else if (plan.changes.length === 0) {
    out.push(`**No changes** to apply${input.sha ? ` at ${shaText(input.sha)}` : ''}.`, '');
  } else {
    const serial = input.serial !== undefined ? ` State serial is now **${input.serial}**.` : '';
    out.push(`**Applied: ${counts}**${input.sha ? ` at ${shaText(input.sha)}` : ''}.${serial}`, '');
  }
  const effects = effectLines(plan.changes);
  if (effects.length > 0)
    out.push(failed ? '### Data effects planned' : '### What happens next', '', ...effects, '');
  if (!failed && plan.changes.some((c) => c.address.startsWith('mapping.'))) {
    out.push('The first sync of each changed mapping will be reported on this pull request.', '');
  }
  if (plan.changes.length > 0) {
    const lines = plan.changes.map((c) => `${SIGN[c.action]} ${c.address}`);
    out.push(
      `<details><summary>Changes: ${count(plan.changes.length, 'resource')}</summary>`,
      '',
      ...fenced('diff', lines),
      '',
      '</details>',
      '',
    );
  }
  out.push(footer([runLink(input.runUrl)]));
  return finish(out);
}

/** A mapping's first sync after an apply: status, counts and the top errors with their recommended actions. */
export function renderRunMarkdown(run: SyncRun, opts: RunMarkdownOptions): string {
  const out: string[] = [firstSyncMarker(opts.dir, run.mapping)];
  out.push(
    `## ${STATUS_ICON[run.status]} ${opts.title ?? `First sync of \`${code(run.mapping)}\`: ${STATUS_TEXT[run.status]}`}`,
    '',
  );
  const duration = run.duration_ms !== null ? ` · ${seconds(run.duration_ms)}` : '';
  out.push(
    `\`model.${code(run.model)}\` → \`destination.${code(run.destination)}\` (${code(run.action)}) · run \`${code(run.id)}\` · started ${time(run.started_at)}${duration}`,
    '',
  );
  const { extract: x, load: l } = run;
  out.push(
    '| Change | Extracted | Loaded | Failed |',
    '|---|---:|---:|---:|',
    `| added | ${n(x.added)} | ${n(l.added.succeeded)} | ${n(l.added.failed)} |`,
    `| updated | ${n(x.updated)} | ${n(l.updated.succeeded)} | ${n(l.updated.failed)} |`,
    `| deleted | ${n(x.deleted)} | ${n(l.deleted.succeeded)} | ${n(l.deleted.failed)} |`,
    `| **total** | **${n(x.total)}** rows | **${n(l.succeeded)}** of ${n(l.attempted)} | **${n(l.failed)}** |`,
    '',
  );
  const limit = opts.topErrors ?? 5;
  if (run.errors.length > 0) {
    const top = [...run.errors].sort((a, b) => b.records - a.records).slice(0, limit);
    out.push('### Top errors', '');
    for (const e of top) {
      out.push(`- **\`${code(e.code)}\`** × ${count(e.records, 'record')}: ${inline(e.message)}`);
      if (e.recommended_action) out.push(`  - **Recommended action:** ${inline(e.recommended_action)}`);
    }
    if (run.errors.length > top.length)
      out.push(`- …and ${count(run.errors.length - top.length, 'more kind')} of error`);
    out.push('');
  }
  // Sample payloads hold user data: they stay out of the pull request.
  if (l.failed > 0 || run.errors.length > 0) {
    out.push(`Failed records and sample payloads: \`backflow syncs show ${code(run.id)}\`.`, '');
  }
  return finish(out);
}

/**
 * Cuts `body` to at most `limit` characters, keeping the head (title, summary, effects) and the tail
 * (the end of the diff, the footer), with a note where it was cut. Code fences and `<details>` open at the
 * cut are closed before the note and reopened after it, so the rest of the comment still renders.
 */
export function truncateComment(body: string, limit = GITHUB_COMMENT_LIMIT): string {
  if (body.length <= limit) return body;
  const lineCap = Math.max(80, Math.floor(limit / 8));
  const lines = body.split('\n').map((l) => (l.length > lineCap ? `${l.slice(0, lineCap)} …` : l));
  const reserve = Math.min(1_000, Math.floor(limit * 0.3));
  let tailBudget = Math.floor((limit - reserve) * 0.25);
  let headBudget = limit - reserve - tailBudget;
  while (headBudget > 0) {
    const result = cutAt(lines, headBudget, tailBudget, limit);
    if (result.length <= limit) return result;
    const over = result.length - limit + 16;
    headBudget -= over;
    if (headBudget <= 0) tailBudget = Math.max(0, tailBudget + headBudget);
  }
  const note = '\n\n> ✂️ cut to fit GitHub’s comment limit';
  return body.slice(0, Math.max(0, limit - note.length)) + note;
}

// ── plan pieces ─────────────────────────────────────────────────────────────

const SIGN = { create: '+', update: '~', delete: '-' } as const;

function diffLines(changes: readonly ResourceChange[]): string[] {
  const out: string[] = [];
  for (const c of changes) {
    out.push(`${SIGN[c.action]} ${c.address}`);
    if (c.action === 'create') {
      for (const [path, value] of flatten(c.after ?? {})) out.push(`+     ${path} = ${value}`);
    } else if (c.action === 'delete') {
      if (c.reason) out.push(`      # (because ${oneLine(c.reason)})`);
      for (const [path, value] of flatten(c.before ?? {})) out.push(`-     ${path} = ${value}`);
    } else {
      for (const d of c.diff) {
        if (d.before === undefined) out.push(`+     ${d.path}: ${fmt(d.after)}`);
        else if (d.after === undefined) out.push(`-     ${d.path}: ${fmt(d.before)}`);
        else out.push(`~     ${d.path}: ${fmt(d.before)} -> ${fmt(d.after)}`);
      }
    }
  }
  return out;
}

/** Leaf paths of a body (`fields.email = "email"`); arrays stay whole. */
function flatten(value: Readonly<Record<string, unknown>>, prefix = ''): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0) {
      out.push(...flatten(v as Record<string, unknown>, path));
    } else if (v !== undefined) {
      out.push([path, fmt(v)]);
    }
  }
  return out;
}

const EFFECT_ORDER: Record<Effect['kind'], number> = {
  full_resync: 0,
  delete_segment: 1,
  mapping_removed: 2,
  mapping_disabled: 3,
  mapping_enabled: 4,
  upsert_segment: 5,
};

function effectLines(changes: readonly ResourceChange[]): string[] {
  const seen = new Set<string>();
  const effects: Effect[] = [];
  for (const c of changes) {
    for (const e of c.effects) {
      const key = JSON.stringify(e);
      if (!seen.has(key)) {
        seen.add(key);
        effects.push(e);
      }
    }
  }
  effects.sort((a, b) => EFFECT_ORDER[a.kind] - EFFECT_ORDER[b.kind]);
  const out: string[] = [];
  const resyncs = effects.filter((e) => e.kind === 'full_resync');
  if (resyncs.length > 1) {
    const known = resyncs.reduce((sum, e) => sum + (e.records ?? 0), 0);
    const unknown = resyncs.some((e) => e.records === undefined);
    out.push(
      `**${count(resyncs.length, 'mapping')} will fully resync**${known > 0 ? `, sending ${unknown ? 'at least ' : ''}**${count(known, 'record')}**` : ''}.`,
      '',
    );
  }
  const byKind = new Map<Effect['kind'], Effect[]>();
  for (const e of effects) byKind.set(e.kind, [...(byKind.get(e.kind) ?? []), e]);
  for (const group of byKind.values())
    out.push(...capped(group, (e) => [effectLine(e)], 'effects of this kind'));
  return out;
}

function effectLine(e: Effect): string {
  switch (e.kind) {
    case 'full_resync': {
      const records =
        e.records !== undefined ? `all **${count(e.records, 'record')}**` : 'every record, not only changes';
      return `- 🔁 **Full resync** of \`${addr('mapping', e.mapping)}\`: its next sync sends ${records}${e.reason ? ` (${inline(e.reason)})` : ''}`;
    }
    case 'delete_segment':
      return `- 🗑️ **Segment deleted downstream**: \`${addr('segment', e.segment)}\` (\`delete_segment\` on \`${addr('segment_integration', e.integration)}\`)`;
    case 'mapping_removed':
      return `- ⏹️ **Mapping removed**: \`${addr('mapping', e.mapping)}\` — its syncs stop`;
    case 'mapping_disabled':
      return `- ⏸️ **Mapping disabled**: \`${addr('mapping', e.mapping)}\` — its scheduled syncs stop`;
    case 'mapping_enabled':
      return `- ▶️ **Mapping enabled**: \`${addr('mapping', e.mapping)}\` — its scheduled syncs start`;
    case 'upsert_segment':
      return `- 📤 Segment \`${addr('segment', e.segment)}\` created or renamed downstream (\`upsert_segment\` on \`${addr('segment_integration', e.integration)}\`)`;
  }
}

function healthLines(health: readonly MappingHealth[]): string[] {
  if (health.length === 0) return [];
  const rows = capped(
    health,
    (h) => [
      `| \`${addr('mapping', h.mapping)}\` | ${statusCell(h.status)} | ${time(h.started_at)} | \`${code(h.run_id)}\` |`,
    ],
    'mappings',
  );
  return ['| Mapping | Last run | Started | Run |', '|---|---|---|---|', ...rows];
}

function statusCell(status: string): string {
  const known = status as RunStatus;
  return STATUS_ICON[known] ? `${STATUS_ICON[known]} ${STATUS_TEXT[known]}` : inline(status);
}

function diagnosticLines(d: Diagnostic, planDir: string, dir: string): string[] {
  let where = '';
  if (d.file) {
    const rel = d.file.startsWith(`${planDir}/`) ? d.file.slice(planDir.length + 1) : d.file;
    const path = dir === '.' || rel.startsWith('/') ? rel : `${dir}/${rel}`;
    where = `\`${code(path)}:${d.line ?? 1}:${d.column ?? 1}\` `;
  }
  const address = d.address ? `\`${code(d.address)}\` ` : '';
  const lines = [`- ${where}${address}**${inline(d.summary)}**${d.code ? ` (\`${code(d.code)}\`)` : ''}`];
  if (d.detail) lines.push(...d.detail.split('\n').map((l) => `  ${inline(l)}`));
  return lines;
}

// ── truncation ──────────────────────────────────────────────────────────────

interface Frame {
  readonly kind: 'fence' | 'details';
  /** The line that opened it: frames are the same when their lines are. */
  readonly line: number;
  readonly opener: string;
  readonly closer: string;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
/** An attribute line of the plan diff (`~     sql: …`, `      # (because …)`). */
const ATTRIBUTE = /^[-+~ ] {4}/;

/** The open fences and `<details>` before line `end`. */
function stackAt(lines: readonly string[], end: number): Frame[] {
  const stack: Frame[] = [];
  for (let i = 0; i < end; i++) {
    const line = lines[i]!;
    const top = stack[stack.length - 1];
    if (top?.kind === 'fence') {
      const m = FENCE.exec(line);
      if (m && m[2]!.trim() === '' && m[1]![0] === top.closer[0] && m[1]!.length >= top.closer.length)
        stack.pop();
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence && !(fence[1]![0] === '`' && fence[2]!.includes('`'))) {
      stack.push({ kind: 'fence', line: i, opener: line.trimStart(), closer: fence[1]! });
      continue;
    }
    for (const m of line.matchAll(/<(\/?)details\b[^>]*>/gi)) {
      if (m[1] === '') stack.push({ kind: 'details', line: i, opener: line.trim(), closer: '</details>' });
      else if (stack[stack.length - 1]?.kind === 'details') stack.pop();
    }
  }
  return stack;
}

function cutAt(lines: readonly string[], headBudget: number, tailBudget: number, limit: number): string {
  let h = 0;
  let used = 0;
  while (h < lines.length && used + lines[h]!.length + 1 <= headBudget) used += lines[h++]!.length + 1;
  let t = lines.length;
  used = 0;
  while (t > h && used + lines[t - 1]!.length + 1 <= tailBudget) used += lines[--t]!.length + 1;
  // Cut between resources of a diff, not between a resource and its attribute lines.
  for (let back = 0; back < 20 && h > 1 && ATTRIBUTE.test(lines[h] ?? ''); back++) h--;
  for (let ahead = 0; ahead < 20 && t < lines.length && ATTRIBUTE.test(lines[t]!); ahead++) t++;
  const head = stackAt(lines, h);
  const tail = stackAt(lines, t);
  let common = 0;
  while (common < head.length && common < tail.length && head[common]!.line === tail[common]!.line) common++;
  const cutLines = t - h;
  const cutChars = lines.slice(h, t).reduce((sum, l) => sum + l.length + 1, 0);
  const what = `${count(cutLines, 'line')} (${count(cutChars, 'character')})`;
  const inFence = common > 0 && head[common - 1]!.kind === 'fence';
  const note = inFence
    ? [
        `@@ ✂ ${what} cut here to fit GitHub's ${n(limit)}-character comment limit; the full output is in the workflow log @@`,
      ]
    : [
        '',
        `> [!NOTE]`,
        `> ✂️ ${what} cut here to fit GitHub's ${n(limit)}-character comment limit. The full output is in the workflow log.`,
        '',
      ];
  const closers = head
    .slice(common)
    .reverse()
    .map((f) => (f.kind === 'details' ? `\n${f.closer}` : f.closer));
  const openers = tail
    .slice(common)
    .map((f) =>
      f.kind === 'details' ? `${f.opener.replace(/<\/summary>/i, ' (end)</summary>')}\n` : f.opener,
    );
  return [...lines.slice(0, h), ...closers, ...note, ...openers, ...lines.slice(t)].join('\n');
}

// ── small helpers ───────────────────────────────────────────────────────────

const STATUS_ICON: Record<RunStatus, string> = {
  success: '✅',
  partial_success: '⚠️',
  failed: '❌',
  in_progress: '⏳',
};

const STATUS_TEXT: Record<RunStatus, string> = {
  success: 'success',
  partial_success: 'partial success',
  failed: 'failed',
  in_progress: 'in progress',
};

function finish(lines: readonly string[]): string {
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

function footer(parts: readonly string[]): string {
  return `<sub>backflow${parts
    .filter(Boolean)
    .map((p) => ` · ${p}`)
    .join('')}</sub>`;
}

function shaText(sha: string | undefined): string {
  return sha ? `commit ${sha.slice(0, 7)}` : '';
}

function runLink(url: string | undefined): string {
  return url ? `[workflow run](${url})` : '';
}

/** A code fence longer than any backtick run inside, so no value can close it early. */
function fenced(lang: string, lines: readonly string[]): string[] {
  const longest = Math.max(
    2,
    ...lines.map((l) => Math.max(0, ...(l.match(/`+/g) ?? []).map((r) => r.length))),
  );
  const fence = '`'.repeat(longest + 1);
  return [`${fence}${lang}`, ...lines, fence];
}

function capped<T>(items: readonly T[], render: (item: T) => string[], what: string): string[] {
  const out = items.slice(0, LIST_CAP).flatMap(render);
  if (items.length > LIST_CAP) out.push(`- …and ${n(items.length - LIST_CAP)} more ${what}`);
  return out;
}

function addr(kind: string, name: string): string {
  return code(name.includes('.') ? name : `${kind}.${name}`);
}

function fmt(v: unknown): string {
  if (v === undefined) return '(none)';
  return redactUrls(JSON.stringify(v) ?? String(v));
}

function oneLine(text: string): string {
  return redactUrls(text).replace(/\s*\n\s*/g, ' ');
}

/** Text for a Markdown line: no HTML, no emphasis, no table breaks, no @-mentions. */
function inline(text: string): string {
  return oneLine(text)
    .replace(/[\\`*_[\]<>|~]/g, '\\$&')
    .replace(/&/g, '&amp;')
    .replace(/@(?=\w)/g, '@\u2060');
}

/** Text inside an inline code span (backticks cannot appear in one delimited by a single backtick). */
function code(text: string): string {
  return oneLine(text).replace(/`/g, "'");
}

/** `scheme://user:password@host` → `scheme://user:***@host`: a driver error must not leak a password. */
function redactUrls(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:)[^@\s/]+@/gi, '$1***@');
}

function markerValue(text: string): string {
  return JSON.stringify(text).replace(/--/g, '-\\u002d').replace(/>/g, '\\u003e');
}

function count(value: number, noun: string): string {
  return `${n(value)} ${noun}${value === 1 ? '' : 's'}`;
}

function n(value: number): string {
  return value.toLocaleString('en-US');
}

function seconds(ms: number): string {
  return ms < 1_000
    ? `${ms} ms`
    : ms < 120_000
      ? `${(ms / 1_000).toFixed(1)} s`
      : `${Math.round(ms / 60_000)} min`;
}

function time(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? inline(iso) : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
