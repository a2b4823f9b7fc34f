/** `backflow segments …`: events into segment queues, flushing them without the agent, statistics. */
import { basename } from 'node:path';
import { errorMessage, UserError } from '../../engine/errors.js';
import { discardFailedBatch } from '../../engine/segments/discard.js';
import { managedSegment } from '../../engine/segments/events.js';
import {
  type EnqueueResult,
  enqueueClear,
  enqueueProfiles,
  flushDue,
  queueDepth,
  type RefreshReport,
  refreshModelSegments,
  resync,
  segmentStats,
} from '../../engine/segments/index.js';
import { type ProfileFileFormat, readProfiles } from '../../engine/segments/profile-files.js';
import { profileKey } from '../../engine/segments/profiles.js';
import { queueSummaries } from '../../engine/segments/queue.js';
import { resolveIntegration, resolveSegment } from '../../engine/segments/resolve.js';
import type { Profile } from '../../engine/segments/types.js';
import { writeFileAtomically } from '../../engine/state/local.js';
import { parseTime } from '../../engine/sync/overview.js';
import { type IO, interruptible, print, printJson } from '../io.js';
import {
  renderBatch,
  renderEnqueue,
  renderFlush,
  renderQueue,
  renderRefresh,
  renderStats,
} from '../render/segments-text.js';
import { withRuntime } from './sync.js';

/** Profiles per enqueue call (one transaction each) when a file is queued. */
const CHUNK = 10_000;
/** Problems listed before "and N more". */
const SHOWN_PROBLEMS = 20;

export interface ProfilesOptions {
  readonly dir: string;
  readonly segment: string;
  readonly kind: 'add' | 'remove';
  readonly file: string;
  readonly format?: string;
  readonly json?: boolean;
}

/** `segments add|remove SEGMENT --file F`: the whole file is checked before anything is queued. */
export async function segmentsProfilesCommand(io: IO, opts: ProfilesOptions): Promise<number> {
  if (opts.format !== undefined && opts.format !== 'jsonl' && opts.format !== 'csv')
    throw new UserError(`--format ${opts.format} is not a profile file format`, {
      hint: 'use --format jsonl or --format csv',
    });
  const format = opts.format as ProfileFileFormat | undefined;
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    const segment = managedSegment(state, opts.segment, opts.kind);
    await checkFile(opts.file, format, segment.body.key);
    let total: EnqueueResult | undefined;
    let chunk: Profile[] = [];
    const send = async () => {
      const r = await enqueueProfiles({
        store,
        state,
        segment: segment.name,
        kind: opts.kind,
        profiles: chunk,
      });
      total = total ? { ...r, profiles: total.profiles + r.profiles, events: total.events + r.events } : r;
      chunk = [];
    };
    for await (const item of profilesOf(opts.file, format)) {
      if ('profile' in item) chunk.push(item.profile);
      if (chunk.length >= CHUNK) await send();
    }
    if (chunk.length > 0 || !total) await send();
    if (opts.json) printJson(io, total);
    else print(io, renderEnqueue(total!));
    return 0;
  });
}

function profilesOf(file: string, format: ProfileFileFormat | undefined) {
  return readProfiles({ path: file, ...(format ? { format } : {}) });
}

/** Reads the file once to check every profile; returns how many it holds. */
async function checkFile(
  file: string,
  format: ProfileFileFormat | undefined,
  keyField: string,
): Promise<number> {
  const name = basename(file);
  const problems: string[] = [];
  let count = 0;
  try {
    for await (const item of profilesOf(file, format)) {
      if ('message' in item) problems.push(`${name}:${item.line}: ${item.message}`);
      else {
        const k = profileKey(item.profile, keyField);
        if ('problem' in k) problems.push(`${name}:${item.line}: the profile ${k.problem}`);
        else count++;
      }
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read ${file}: ${errorMessage(e)}`, {
      hint: 'check the path (relative to the current directory)',
      cause: e,
    });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, SHOWN_PROBLEMS).join('\n  ');
    const more = problems.length > SHOWN_PROBLEMS ? `\n  … and ${problems.length - SHOWN_PROBLEMS} more` : '';
    throw new UserError(`${file} has ${problems.length} problem(s); nothing was queued:\n  ${shown}${more}`, {
      hint: `each profile is a JSON object per line (.jsonl) or a CSV row under a header row, and needs the key field "${keyField}"`,
    });
  }
  if (count === 0) throw new UserError(`${file} holds no profiles`, { hint: 'nothing was queued' });
  return count;
}

/** `segments clear SEGMENT`. */
export async function segmentsClearCommand(
  io: IO,
  opts: { dir: string; segment: string; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    const r = await enqueueClear({ store, state, segment: opts.segment });
    if (opts.json) printJson(io, r);
    else print(io, renderEnqueue(r));
    return 0;
  });
}

/** `segments resync SEGMENT`: a model-backed segment is refreshed first, so "current" means now. */
export async function segmentsResyncCommand(
  io: IO,
  opts: { dir: string; segment: string; integration?: string; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ config, state, store }) => {
    const segment = resolveSegment(state, opts.segment);
    let refreshed: RefreshReport[] = [];
    if (segment.body.members !== 'managed')
      refreshed = await interruptible((signal) =>
        refreshModelSegments({ store, state, configDir: config.dir, segment: segment.name, signal }),
      );
    const r = await resync({
      store,
      state,
      segment: segment.name,
      ...(opts.integration ? { integration: opts.integration } : {}),
    });
    if (opts.json) printJson(io, { ...r, refreshed });
    else {
      if (refreshed.length) print(io, renderRefresh(refreshed));
      print(io, renderEnqueue(r));
    }
    return 0;
  });
}

/** `segments refresh [SEGMENT]`: model-backed membership now. */
export async function segmentsRefreshCommand(
  io: IO,
  opts: { dir: string; segment?: string; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ config, state, store }) => {
    const reports = await interruptible((signal) =>
      refreshModelSegments({
        store,
        state,
        configDir: config.dir,
        signal,
        ...(opts.segment ? { segment: opts.segment } : {}),
      }),
    );
    if (opts.json) printJson(io, reports);
    else print(io, renderRefresh(reports));
    return 0;
  });
}

/** `segments flush [INTEGRATION] [--all]`: exit 1 when a query failed (its batch stays queued). */
export async function segmentsFlushCommand(
  io: IO,
  opts: { dir: string; integration?: string; segment?: string; all?: boolean; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ config, state, store }) => {
    const report = await interruptible((signal) =>
      flushDue({
        store,
        state,
        configDir: config.dir,
        signal,
        ...(opts.integration ? { integration: opts.integration } : {}),
        ...(opts.segment ? { segment: opts.segment } : {}),
        ...(opts.all ? { all: true } : {}),
        ...(opts.json ? {} : { onBatch: (o) => print(io, renderBatch(o, io.style)) }),
      }),
    );
    if (opts.json) printJson(io, report);
    else print(io, renderFlush(report, io.style));
    return report.failed > 0 ? 1 : 0;
  });
}

/** `segments stats INTEGRATION --since 24h`. */
export async function segmentsStatsCommand(
  io: IO,
  opts: { dir: string; integration: string; since?: string; until?: string; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    const since = new Date(parseTime(opts.since ?? '24h', '--since'));
    const until = opts.until ? new Date(parseTime(opts.until, '--until')) : new Date();
    const known = state?.resources.some((r) => r.address === `segment_integration.${opts.integration}`);
    const stats = await segmentStats({ store, integration: opts.integration, since, until });
    // A name in neither the state nor the log is a typo: say so, with a suggestion.
    if (!known && stats.successful_queries + stats.failed_queries === 0)
      resolveIntegration(state, opts.integration);
    if (opts.json) printJson(io, stats);
    else print(io, renderStats(stats, io.style));
    return 0;
  });
}

/** `segments discard INTEGRATION --segment S (--out FILE | --drop)`: give up on a failed head batch. */
export async function segmentsDiscardCommand(
  io: IO,
  opts: { dir: string; integration: string; segment: string; out?: string; drop?: boolean; json?: boolean },
): Promise<number> {
  if (opts.out !== undefined && opts.drop)
    throw new UserError('--out and --drop exclude each other', {
      hint: '--out FILE keeps the profiles to queue them again; --drop lets them go',
    });
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    // A queue outlives its integration or segment (a removal's own events): names not applied are
    // accepted when such a queue exists; otherwise they are a typo, told with a suggestion.
    const applied = (address: string) => state?.resources.some((r) => r.address === address) ?? false;
    if (!applied(`segment_integration.${opts.integration}`) || !applied(`segment.${opts.segment}`)) {
      const queues = await queueSummaries(store.sql, opts.integration);
      if (!queues.some((q) => q.segment === opts.segment)) {
        resolveIntegration(state, opts.integration);
        resolveSegment(state, opts.segment);
      }
    }
    const r = await discardFailedBatch({
      store,
      integration: opts.integration,
      segment: opts.segment,
      keep: async (profiles) => {
        if (profiles.length === 0) return;
        if (opts.out === undefined) {
          if (opts.drop) return;
          throw new UserError(
            `the failed batch of ${opts.integration}/${opts.segment} holds ${profiles.length} profile${profiles.length === 1 ? '' : 's'}: say where to keep them`,
            { hint: 'add --out FILE (JSON Lines, for `segments add|remove --file` once fixed), or --drop' },
          );
        }
        await writeFileAtomically(opts.out, profiles.map((p) => `${JSON.stringify(p)}\n`).join(''), {
          exclusive: true,
        });
      },
    });
    if (opts.json) printJson(io, { ...r, ...(opts.out && r.profiles ? { saved_to: opts.out } : {}) });
    else {
      const what = r.profiles ? `${r.profiles} profile${r.profiles === 1 ? '' : 's'}` : 'its event';
      print(
        io,
        `Discarded the ${r.kind} batch at the head of ${r.integration}/${r.segment} (${what}, ${r.attempts} failed attempt${r.attempts === 1 ? '' : 's'}; last error: ${r.last_error}).`,
      );
      if (opts.out && r.profiles)
        print(
          io,
          `Its profiles are in ${opts.out}: once the cause is fixed, \`backflow segments ${r.kind} ${r.segment} --file ${opts.out}\` queues them again.`,
        );
    }
    return 0;
  });
}

/** `segments queue`: what waits, per integration and segment. */
export async function segmentsQueueCommand(io: IO, opts: { dir: string; json?: boolean }): Promise<number> {
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    const rows = await queueDepth({ store, state });
    if (opts.json) printJson(io, rows);
    else print(io, renderQueue(rows));
    return 0;
  });
}
