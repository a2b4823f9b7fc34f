import { redact } from '../config/env.js';
import type { SyncRun } from '../sync/types.js';
import type { Incident } from './incidents.js';
import type { AlertMessage, Fact, MessageError, MessageKind } from './types.js';

/** At most this many errors go into a message, the ones affecting the most records first. */
export const TOP_ERRORS = 3;

const plural = (n: number, word: string) =>
  `${n} ${n === 1 ? word : word.endsWith('query') ? `${word.slice(0, -1)}ies` : `${word}s`}`;

function topErrors(errors: SyncRun['errors']): MessageError[] {
  return [...errors]
    .sort((a, b) => b.records - a.records)
    .slice(0, TOP_ERRORS)
    .map((e) => ({
      code: e.code,
      message: redact(e.message),
      records: e.records,
      recommended_action: e.recommended_action,
    }));
}

function runSummary(run: SyncRun): string {
  const l = run.load;
  if (run.status === 'partial_success')
    return `${plural(l.failed, 'record')} of ${l.attempted} failed to load`;
  if (run.status === 'failed' && l.attempted > 0 && l.failed === l.attempted)
    return `all ${plural(l.attempted, 'record')} failed to load`;
  if (run.status === 'failed') {
    const first = run.errors[0];
    return `the run could not complete${first ? ` (${first.code}: ${redact(first.message)})` : ''}`;
  }
  return l.attempted === 0
    ? 'no changes to load'
    : `${l.succeeded} of ${plural(l.attempted, 'record')} loaded`;
}

function runFacts(run: SyncRun): Fact[] {
  const e = run.extract;
  const l = run.load;
  const secs = run.duration_ms === null ? '' : `, ${(run.duration_ms / 1000).toFixed(1)}s`;
  return [
    { label: 'Mapping', value: run.mapping },
    { label: 'Status', value: run.status },
    { label: 'Model', value: `${run.model} (source ${run.source})` },
    { label: 'Destination', value: `${run.destination} (${run.action})` },
    {
      label: 'Extracted',
      value: `${e.total} (${e.added} added, ${e.updated} updated, ${e.deleted} deleted)`,
    },
    { label: 'Loaded', value: `${l.attempted} attempted, ${l.succeeded} succeeded, ${l.failed} failed` },
    { label: 'Run', value: `${run.id} (${run.trigger}, started ${run.started_at}${secs})` },
  ];
}

export interface RunMessageRequest {
  readonly alert: string;
  readonly kind: MessageKind;
  readonly run: SyncRun;
  /** The incident before this run (reminders and recoveries say since when). */
  readonly incident: Incident | null;
  readonly now: Date;
}

/** The message about a mapping's run: its first failure, a reminder, or its recovery. */
export function runMessage(req: RunMessageRequest): AlertMessage {
  const { run, incident } = req;
  const since = incident ? `since ${incident.opened_at}` : '';
  const failingRuns = incident ? incident.failing_runs + (req.kind === 'recovered' ? 0 : 1) : 1;
  const history: Fact[] = incident
    ? [{ label: 'Failing', value: `${since}, ${plural(failingRuns, 'failing run')}` }]
    : [];
  const base = {
    alert: req.alert,
    kind: req.kind,
    topic: `mapping.${run.mapping}`,
    run_id: run.id,
    next_step: `backflow syncs show ${run.id}`,
    created_at: req.now.toISOString(),
  };
  switch (req.kind) {
    case 'alert':
      return {
        ...base,
        status: run.status,
        title: `[backflow] ${run.mapping} ${run.status}`,
        summary: `Mapping ${run.mapping} ${run.status === 'failed' ? 'failed' : 'partially succeeded'}: ${runSummary(run)}.`,
        facts: runFacts(run),
        errors: topErrors(run.errors),
      };
    case 'reminder':
      return {
        ...base,
        status: run.status,
        title: `[backflow] ${run.mapping} still ${run.status} (reminder)`,
        summary: `Mapping ${run.mapping} is still ${run.status} ${since} (${plural(failingRuns, 'failing run')}); latest run: ${runSummary(run)}.`,
        facts: [...runFacts(run), ...history],
        errors: topErrors(run.errors),
      };
    case 'recovered':
      return {
        ...base,
        status: 'recovered',
        title: `[backflow] ${run.mapping} recovered`,
        summary: `Mapping ${run.mapping} recovered: run ${run.id} ended ${run.status} (${runSummary(run)}) after ${plural(failingRuns, 'failing run')} ${since}.`,
        facts: [...runFacts(run), ...history],
        errors: topErrors(run.errors),
      };
  }
}

export interface SegmentMessageRequest {
  readonly alert: string;
  readonly kind: Exclude<MessageKind, 'recovered'>;
  readonly integration: string;
  readonly connector: string | undefined;
  readonly segment: { readonly name: string; readonly id?: number; readonly title?: string };
  readonly queryKind: string;
  readonly error: string;
  readonly attempts: number;
  readonly incident: Incident | null;
  readonly now: Date;
}

/** The message about a segment integration query that failed after its retries. */
export function segmentMessage(req: SegmentMessageRequest): AlertMessage {
  const seg = req.segment;
  const reminder = req.kind === 'reminder' && req.incident;
  const failures = (req.incident?.failing_runs ?? 0) + 1;
  return {
    alert: req.alert,
    kind: req.kind,
    topic: `segment_integration.${req.integration}`,
    status: 'segment_failed',
    title: `[backflow] segment integration ${req.integration} ${reminder ? 'still failing (reminder)' : 'failed'}`,
    summary: reminder
      ? `Segment integration ${req.integration} is still failing since ${req.incident?.opened_at} (${plural(failures, 'failed query')}); latest: the ${req.queryKind} query for segment ${seg.name} failed after ${plural(req.attempts, 'attempt')}.`
      : `Segment integration ${req.integration}: the ${req.queryKind} query for segment ${seg.name} failed after ${plural(req.attempts, 'attempt')}; its profiles stay queued.`,
    facts: [
      { label: 'Integration', value: req.integration },
      { label: 'Status', value: 'segment_failed' },
      ...(req.connector ? [{ label: 'Connector', value: req.connector }] : []),
      {
        label: 'Segment',
        value: `${seg.name}${seg.id !== undefined ? ` (id ${seg.id}${seg.title ? `, ${seg.title}` : ''})` : ''}`,
      },
      { label: 'Query', value: req.queryKind },
      { label: 'Attempts', value: String(req.attempts) },
      ...(reminder
        ? [
            {
              label: 'Failing',
              value: `since ${req.incident?.opened_at}, ${plural(failures, 'failed query')}`,
            },
          ]
        : []),
    ],
    errors: [
      {
        code: 'segment_query_failed',
        message: redact(req.error),
        records: 0,
        recommended_action: `check the connector and the ${req.queryKind} query of segment_integrations.${req.integration} (\`backflow validate\`); queued profiles are sent once it succeeds`,
      },
    ],
    next_step: `backflow segments stats ${req.integration} --since 24h`,
    run_id: null,
    created_at: req.now.toISOString(),
  };
}

/** The message as plain text: the email's text part and the in-app notification's body. */
export function renderText(m: AlertMessage): string {
  const width = Math.max(...m.facts.map((f) => f.label.length));
  const lines = [m.summary, '', ...m.facts.map((f) => `${f.label.padEnd(width)}  ${f.value}`)];
  if (m.errors.length) {
    lines.push('', m.kind === 'recovered' ? 'Errors of this run:' : 'Top errors:');
    for (const e of m.errors) {
      lines.push(`  - ${e.code}${e.records ? ` (${plural(e.records, 'record')})` : ''}: ${e.message}`);
      lines.push(`    Recommended action: ${e.recommended_action}`);
    }
  }
  lines.push('', `More: ${m.next_step}`, '', `-- backflow alert "${m.alert}"`);
  return `${lines.join('\n')}\n`;
}
