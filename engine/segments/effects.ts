/**
 * Events from apply: a segment created or renamed queues `upsert_segment`, a removed segment
 * `delete_segment`, on each integration the plan named. Each effect is queued once (by lineage and
 * effect id), however often it is offered.
 */
import type { PendingEffect, StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { type EventGroup, insertEvent } from './queue.js';
import { findIntegration, findSegment, type IntegrationSnapshot, queryOf } from './resolve.js';

export interface EnqueueApplyEffectsRequest {
  readonly store: RuntimeStore;
  /** The state apply just wrote. */
  readonly state: StateDocument;
  /** The state before the apply: where a deleted segment's id and name (and a removed integration) are found. */
  readonly previous?: StateDocument | null;
  /** The pending effects the apply recorded; other kinds than upsert_segment/delete_segment are ignored. */
  readonly effects: readonly PendingEffect[];
  readonly now?: Date;
}

export interface EnqueueApplyEffectsResult {
  /** Effect ids queued by this call. */
  readonly queued: readonly string[];
  /** Effects already queued before. */
  readonly already: readonly string[];
  /** Effects that cannot run, with why. */
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
}

/** Queues the segment effects of an apply (call it right after the state is written). */
export async function enqueueApplyEffects(
  req: EnqueueApplyEffectsRequest,
): Promise<EnqueueApplyEffectsResult> {
  const now = (req.now ?? new Date()).toISOString();
  const queued: string[] = [];
  const already: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  await req.store.sql.transaction(async (tx) => {
    for (const pending of req.effects) {
      const effect = pending.effect;
      if (effect.kind !== 'upsert_segment' && effect.kind !== 'delete_segment') continue;
      const id = `${req.state.lineage}:${pending.id}`;
      const seen = await tx.all('SELECT id FROM segment_effects WHERE id = ?', [id]);
      if (seen.length) {
        already.push(pending.id);
        continue;
      }
      const segment =
        effect.kind === 'upsert_segment'
          ? findSegment(req.state, effect.segment)
          : (findSegment(req.previous, effect.segment) ?? findSegment(req.state, effect.segment));
      if (!segment) {
        skipped.push({
          id: pending.id,
          reason: `segment.${effect.segment} is in neither the applied nor the previous state, so its id is unknown`,
        });
        continue;
      }
      let snapshot: IntegrationSnapshot | undefined;
      let integration = findIntegration(req.state, effect.integration);
      if (!integration) {
        const before = findIntegration(req.previous, effect.integration);
        if (before) {
          snapshot = { integration: before.body, connector: before.connector };
          integration = before;
        }
      }
      if (!integration || !queryOf(integration, effect.kind)) {
        skipped.push({
          id: pending.id,
          reason: integration
            ? `segment_integration.${effect.integration} has no \`${effect.kind}\` query`
            : `segment_integration.${effect.integration} is not in the state`,
        });
        continue;
      }
      const event: EventGroup = {
        integration: effect.integration,
        segment: segment.name,
        kind: effect.kind,
        segmentId: segment.body.id,
        segmentName: segment.body.name,
        ...(snapshot ? { snapshot: JSON.stringify(snapshot) } : {}),
        enqueuedAt: now,
      };
      await insertEvent(tx, event);
      await tx.run('INSERT INTO segment_effects (id, enqueued_at) VALUES (?, ?)', [id, now]);
      queued.push(pending.id);
    }
  });
  return { queued, already, skipped };
}

/** An apply that has not queued its effects this long after writing state never will (it died). */
const APPLY_GRACE_MS = 5 * 60_000;

/**
 * Queues the segment effects of the latest apply that are not queued yet (an apply killed between
 * writing state and queueing its effects). A deleted segment's id is only in the previous state,
 * which is gone by now: once the apply has had time to queue it itself, such an effect is reported
 * once and marked, not run.
 */
export async function catchUpApplyEffects(req: {
  store: RuntimeStore;
  state: StateDocument | null;
  now?: Date;
}): Promise<readonly string[]> {
  const state = req.state;
  if (!state) return [];
  const now = req.now ?? new Date();
  const latest = state.pending_effects.filter(
    (e) =>
      Number(e.id.split(':')[0]) === state.serial &&
      (e.effect.kind === 'upsert_segment' || e.effect.kind === 'delete_segment'),
  );
  if (latest.length === 0) return [];
  const r = await enqueueApplyEffects({ store: req.store, state, effects: latest, now });
  const warnings: string[] = [];
  for (const s of r.skipped) {
    const effect = latest.find((e) => e.id === s.id);
    if (!effect || now.getTime() - Date.parse(effect.applied_at) < APPLY_GRACE_MS) continue;
    const marked = await req.store.sql.run(
      'INSERT INTO segment_effects (id, enqueued_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING',
      [`${state.lineage}:${s.id}`, now.toISOString()],
    );
    if (marked.changes === 1) warnings.push(`apply effect ${s.id} was not queued: ${s.reason}`);
  }
  return warnings;
}
