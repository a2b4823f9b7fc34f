import { randomUUID } from 'node:crypto';
import { hasErrors } from '../diagnostics.js';
import { UserError } from '../errors.js';
import type { AppliedFrom, LockHandle, PendingEffect, StateBackend, StateDocument } from '../state/types.js';
import { STATE_VERSION } from '../state/types.js';
import type { Plan } from './types.js';

export interface ApplyRequest {
  readonly plan: Plan;
  readonly backend: StateBackend;
  /** A lock already held (apply without a plan file locks before planning). */
  readonly lock?: LockHandle;
  readonly appliedFrom?: Omit<AppliedFrom, 'mappings'>;
  readonly now?: Date;
}

export interface ApplyResult {
  readonly state: StateDocument;
  /** False for a no-op apply (serial unchanged, nothing written). */
  readonly changed: boolean;
  readonly newEffects: readonly PendingEffect[];
}

/** Consumers drop pending effects older than this many applies. */
const KEEP_EFFECTS_FOR_SERIALS = 50;

/** Records a plan as the new state: the only side effect of plan/apply. Refuses stale plans. */
export async function applyPlan(req: ApplyRequest): Promise<ApplyResult> {
  const { plan, backend } = req;
  if (hasErrors(plan.diagnostics))
    throw new UserError('the plan has errors; fix them and plan again', {
      hint: 'run `backflow plan` to see them',
    });
  const lock = req.lock ?? (await backend.lock({ operation: 'apply' }));
  try {
    const current = await backend.read();
    const serial = current?.serial ?? 0;
    const lineage = current?.lineage ?? '';
    if (serial !== plan.state.serial || lineage !== plan.state.lineage)
      throw new UserError(
        `the saved plan is stale: it was made against state serial ${plan.state.serial}${plan.state.lineage ? ` (lineage ${plan.state.lineage})` : ''}, but the state is now at serial ${serial}${lineage ? ` (lineage ${lineage})` : ''}`,
        { hint: 'run `backflow plan --out FILE` again and apply the new plan' },
      );
    if (plan.changes.length === 0) return { state: current ?? emptyState(), changed: false, newEffects: [] };
    const nextSerial = serial + 1;
    const now = (req.now ?? new Date()).toISOString();
    const newEffects: PendingEffect[] = plan.changes
      .flatMap((c) => c.effects)
      .map((effect, i) => ({ id: `${nextSerial}:${i}`, effect, applied_at: now }));
    const kept = (current?.pending_effects ?? []).filter(
      (e) => Number(e.id.split(':')[0]) > nextSerial - KEEP_EFFECTS_FOR_SERIALS,
    );
    const changedMappings = [
      ...new Set([
        ...plan.changes
          .filter((c) => c.address.startsWith('mapping.') && c.action !== 'delete')
          .map((c) => c.address.slice(8)),
        ...newEffects.flatMap((e) =>
          'mapping' in e.effect && e.effect.kind !== 'mapping_removed' ? [e.effect.mapping] : [],
        ),
      ]),
    ].sort();
    const state: StateDocument = {
      version: STATE_VERSION,
      serial: nextSerial,
      lineage: lineage || randomUUID(),
      applied_at: now,
      resources: plan.resources,
      pending_effects: [...kept, ...newEffects],
      ...(req.appliedFrom
        ? { applied_from: { ...req.appliedFrom, mappings: changedMappings } }
        : current?.applied_from
          ? { applied_from: current.applied_from }
          : {}),
    };
    await backend.write(state, lock);
    return { state, changed: true, newEffects };
  } finally {
    if (!req.lock) await lock.release();
  }
}

export function emptyState(): StateDocument {
  return { version: STATE_VERSION, serial: 0, lineage: '', resources: [], pending_effects: [] };
}
