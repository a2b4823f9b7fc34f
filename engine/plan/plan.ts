import type { Config } from '../config/index.js';
import type { Diagnostic } from '../diagnostics.js';
import type { StateDocument } from '../state/types.js';
import { diffBodies, resourceChanged } from './diff.js';
import { effectsOf } from './effects.js';
import type { MappingHealth, Plan, ResourceChange, ResourceState } from './types.js';

export interface PlanRequest {
  readonly config: Config;
  readonly state: StateDocument | null;
  /** Problems found by refreshing against the sources (plan stays pure: the caller refreshes). */
  readonly refreshDiagnostics?: readonly Diagnostic[];
  /** Records a full resync will send, per mapping, when known. */
  readonly recordCounts?: ReadonlyMap<string, number>;
  readonly health?: readonly MappingHealth[];
  readonly now?: Date;
}

/** Compares config with state: a value, no side effects. */
export function plan(req: PlanRequest): Plan {
  const before = req.state?.resources ?? [];
  const after = req.config.resources;
  const changes = diffResources(before, after).map((c) => {
    const effects = effectsOf(c, before, after).map((e) =>
      e.kind === 'full_resync' && req.recordCounts?.has(e.mapping)
        ? { ...e, records: req.recordCounts.get(e.mapping)! }
        : e,
    );
    return { ...c, effects };
  });
  const count = (a: string) => changes.filter((c) => c.action === a).length;
  return {
    format_version: '1.0',
    created_at: (req.now ?? new Date()).toISOString(),
    state: { serial: req.state?.serial ?? 0, lineage: req.state?.lineage ?? '' },
    changes,
    summary: { create: count('create'), update: count('update'), delete: count('delete') },
    resources: after,
    diagnostics: req.refreshDiagnostics ?? [],
    ...(req.health?.length ? { health: req.health } : {}),
    dir: req.config.dir,
  };
}

/** Per address: create, update (with the changed paths) or delete, in address order. */
export function diffResources(
  before: readonly ResourceState[],
  after: readonly ResourceState[],
): Omit<ResourceChange, 'effects'>[] {
  const old = new Map(before.map((r) => [r.address, r]));
  const now = new Map(after.map((r) => [r.address, r]));
  const addresses = [...new Set([...old.keys(), ...now.keys()])].sort();
  const out: Omit<ResourceChange, 'effects'>[] = [];
  for (const address of addresses) {
    const a = old.get(address);
    const b = now.get(address);
    if (!a && b)
      out.push({ address, action: 'create', before: null, after: b.body, diff: diffBodies({}, b.body) });
    else if (a && !b)
      out.push({
        address,
        action: 'delete',
        before: a.body,
        after: null,
        diff: [],
        reason: `${address} is not in the configuration`,
      });
    else if (a && b && resourceChanged(a, b)) {
      const diff = diffBodies(a.body, b.body);
      if (diff.length === 0)
        diff.push({ path: '(sensitive value)', before: '(sensitive)', after: '(sensitive, changed)' });
      out.push({ address, action: 'update', before: a.body, after: b.body, diff });
    }
  }
  return out;
}

/** Mappings a plan touches: changed mappings, mappings of changed models and destinations. */
export function touchedMappings(p: Pick<Plan, 'changes' | 'resources'>): string[] {
  const names = new Set<string>();
  const mappings = p.resources.filter((r) => r.kind === 'mapping');
  for (const c of p.changes) {
    const [kind, name] = [
      c.address.slice(0, c.address.indexOf('.')),
      c.address.slice(c.address.indexOf('.') + 1),
    ];
    if (kind === 'mapping') names.add(name);
    if (kind === 'model' || kind === 'destination')
      for (const m of mappings) if (m.body[kind] === name) names.add(m.name);
    if (kind === 'source') {
      const models = p.resources
        .filter((r) => r.kind === 'model' && r.body.source === name)
        .map((r) => r.name);
      for (const m of mappings) if (models.includes(m.body.model as string)) names.add(m.name);
    }
  }
  return [...names].sort();
}
