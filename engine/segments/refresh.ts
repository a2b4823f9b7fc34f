/**
 * Model-backed membership (`members: {model: NAME}`): a refresh streams the model and diffs its
 * rows, by the segment's key, against the stored membership. New keys are added, keys no longer
 * returned are removed, and members whose fields changed are added again (the templates are
 * upserts, so the external table takes the new fields). Memory stays flat: each batch of rows is
 * diffed with index lookups, and what the refresh saw is marked in the store, not kept in memory.
 */
import { randomUUID } from 'node:crypto';
import type { Model } from '../config/types.gen.js';
import { closeQuietly, openSession, sourceOf } from '../connections.js';
import { UserError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { catchUpApplyEffects } from './effects.js';
import { queueProfileEvents } from './events.js';
import { getMembers, pageMembers, removeMembers, touchMembers, upsertMembers } from './membership.js';
import { profileShaper, type StoredProfile } from './profiles.js';
import { integrationsFor, type ResolvedSegment, resolveSegment } from './resolve.js';
import type { RefreshReport } from './types.js';

export interface RefreshRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly configDir: string;
  /** Only this segment (it must be model-backed); default every model-backed segment. */
  readonly segment?: string;
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: Date;
}

const ROWS_PER_BATCH = 1000;

/** Refreshes the membership of model-backed segments, queueing the differences as add/remove events. */
export async function refreshModelSegments(req: RefreshRequest): Promise<RefreshReport[]> {
  let segments: ResolvedSegment[];
  if (req.segment !== undefined) {
    const s = resolveSegment(req.state, req.segment);
    if (s.body.members === 'managed')
      throw new UserError(`segment ${s.name} is managed: its members come from events, not a model`, {
        hint: `use \`backflow segments add|remove ${s.name} --file FILE\``,
      });
    segments = [s];
  } else
    segments = (req.state?.resources ?? [])
      .filter((r) => r.kind === 'segment' && typeof r.body.members === 'object')
      .map((r) => resolveSegment(req.state, r.name));
  const out: RefreshReport[] = [];
  for (const s of segments) {
    req.signal?.throwIfAborted();
    out.push(await refreshOne(req, s));
  }
  return out;
}

async function refreshOne(req: RefreshRequest, segment: ResolvedSegment): Promise<RefreshReport> {
  const modelName = (segment.body.members as { model: string }).model;
  const model = req.state?.resources.find((r) => r.address === `model.${modelName}`);
  const source =
    model &&
    req.state?.resources.find((r) => r.address === `source.${(model.body as unknown as Model).source}`);
  if (!model || !source)
    throw new UserError(
      `the applied state is inconsistent: segment.${segment.name} reads a missing model or source`,
      {
        hint: 'run `backflow plan` and `backflow apply`',
      },
    );
  const integrations = integrationsFor(req.state, segment.name);
  await catchUpApplyEffects(req);
  const now = () => (req.now ?? new Date()).toISOString();
  const token = randomUUID();
  const report = {
    segment: segment.name,
    model: modelName,
    rows: 0,
    added: 0,
    removed: 0,
    changed: 0,
    unchanged: 0,
    duplicates: 0,
    missing_key: 0,
    events: 0,
  };
  const sql = req.store.sql;
  const session = await openSession({
    resource: source,
    configDir: req.configDir,
    ...(req.signal ? { signal: req.signal } : {}),
    ...(req.env ? { env: req.env } : {}),
  });
  try {
    const reader = sourceOf(session, source.address);
    const shape = profileShaper(segment.body);
    const stream = reader.stream({
      sql: (model.body as unknown as Model).sql,
      batchSize: ROWS_PER_BATCH,
      ...(req.signal ? { signal: req.signal } : {}),
    });
    for await (const rows of stream) {
      req.signal?.throwIfAborted();
      if (report.rows === 0 && rows[0] && !Object.hasOwn(rows[0], segment.body.key))
        throw new UserError(
          `model ${modelName} returns no column "${segment.body.key}", the key of segment ${segment.name}`,
          {
            hint: `add ${segment.body.key} to the model's SELECT, or change the segment's \`key\``,
          },
        );
      report.rows += rows.length;
      const batch = new Map<string, StoredProfile>();
      for (const row of rows) {
        const p = shape(row);
        if (typeof p === 'string') report.missing_key++;
        else if (batch.has(p.key)) report.duplicates++;
        else batch.set(p.key, p);
      }
      await sql.transaction(async (tx) => {
        const known = await getMembers(tx, segment.name, [...batch.keys()]);
        const send: StoredProfile[] = [];
        const same: string[] = [];
        for (const p of batch.values()) {
          const m = known.get(p.key);
          if (m?.refresh === token) report.duplicates++;
          else if (!m) {
            report.added++;
            send.push(p);
          } else if (m.hash !== p.hash) {
            report.changed++;
            send.push(p);
          } else {
            report.unchanged++;
            same.push(p.key);
          }
        }
        await upsertMembers(tx, { segment: segment.name, profiles: send, now: now(), refresh: token });
        await touchMembers(tx, { segment: segment.name, keys: same, refresh: token });
        report.events += await queueProfileEvents(tx, {
          segment,
          integrations,
          kind: 'add',
          profiles: send,
          now: now(),
        });
      });
    }
  } finally {
    await closeQuietly(session);
  }
  // Members the model no longer returns. Each page is removed as it is queued, so the next page
  // starts again from the beginning of what is left.
  for (;;) {
    const removed = await sql.transaction(async (tx) => {
      for await (const page of pageMembers(tx, {
        segment: segment.name,
        notSeenBy: token,
        pageSize: ROWS_PER_BATCH,
      })) {
        report.events += await queueProfileEvents(tx, {
          segment,
          integrations,
          kind: 'remove',
          profiles: page,
          now: now(),
        });
        await removeMembers(
          tx,
          segment.name,
          page.map((m) => m.key),
        );
        return page.length;
      }
      return 0;
    });
    report.removed += removed;
    if (removed === 0) break;
  }
  return report;
}
