import type { Config } from '../config/index.js';
import type { Mapping, Model } from '../config/types.gen.js';
import { closeQuietly, openSession } from '../connections.js';
import type { Diagnostic } from '../diagnostics.js';
import { errorMessage } from '../errors.js';
import { healthFromStatus } from '../status/health.js';
import type { RuntimeStore } from '../store/types.js';
import { compileFields } from '../sync/fields.js';
import { diffResources, touchedMappings } from './plan.js';
import type { MappingHealth, ResourceState } from './types.js';

export interface RefreshRequest {
  readonly config: Config;
  readonly stateResources: readonly ResourceState[];
  /** The runtime store, when one exists: record counts and mapping health. */
  readonly store?: RuntimeStore;
  readonly signal?: AbortSignal;
}

export interface RefreshResult {
  readonly diagnostics: Diagnostic[];
  readonly recordCounts: Map<string, number>;
  readonly health: MappingHealth[];
}

/**
 * Connects to the sources and destinations a change touches and checks, without a full scan, that each
 * model's query runs and returns its primary key and the columns its mappings use, and that each
 * destination table has the mapped columns.
 */
export async function refresh(req: RefreshRequest): Promise<RefreshResult> {
  const { config } = req;
  const changes = diffResources(req.stateResources, config.resources);
  const touched = touchedMappings({
    changes: changes.map((c) => ({ ...c, effects: [] })),
    resources: config.resources,
  });
  const mappings = config.doc.mappings ?? {};
  const models = new Set(touched.map((m) => mappings[m]?.model).filter((m): m is string => !!m));
  for (const c of changes)
    if (c.address.startsWith('model.') && c.action !== 'delete') models.add(c.address.slice(6));
  const diagnostics: Diagnostic[] = [];
  await Promise.all([...models].map(async (name) => diagnostics.push(...(await checkModel(req, name)))));
  await Promise.all(touched.map(async (name) => diagnostics.push(...(await checkDestination(req, name)))));

  const recordCounts = new Map<string, number>();
  const health: MappingHealth[] = [];
  if (req.store) {
    for (const name of touched) {
      try {
        const [last] = await req.store.listRuns({ mappings: [name], limit: 1 });
        if (last)
          health.push({ mapping: name, status: last.status, started_at: last.started_at, run_id: last.id });
        const size = await req.store.snapshotSize(name);
        if (size > 0) recordCounts.set(name, size);
      } catch {
        // health is informative; a store that cannot answer must not block the plan
      }
    }
  }
  // No store here (CI with only the state), or it knows no run: the status document beside the state.
  const unknown = touched.filter((name) => !health.some((h) => h.mapping === name));
  health.push(
    ...(await healthFromStatus({ dir: config.dir, settings: config.doc.settings, mappings: unknown })),
  );
  health.sort((a, b) => (a.mapping < b.mapping ? -1 : a.mapping > b.mapping ? 1 : 0));
  return { diagnostics, recordCounts, health };
}

async function checkModel(req: RefreshRequest, name: string): Promise<Diagnostic[]> {
  const { config } = req;
  const model = config.doc.models?.[name] as Model | undefined;
  if (!model) return [];
  const source = config.resources.find((r) => r.address === `source.${model.source}`);
  if (!source) return [];
  const at = config.map.value(['models', name, 'sql']) ?? {};
  const diag = (code: string, summary: string, detail?: string): Diagnostic => ({
    severity: 'error',
    code,
    summary,
    ...(detail ? { detail } : {}),
    address: `model.${name}`,
    ...at,
  });
  let session: Awaited<ReturnType<typeof openSession>> | undefined;
  try {
    session = await openSession({
      resource: source,
      configDir: config.dir,
      ...(req.signal ? { signal: req.signal } : {}),
    });
    if (!session.source) return [diag('not_a_source', `source.${model.source} cannot be read as a source`)];
    const columns = (
      await session.source.describe({ sql: model.sql, ...(req.signal ? { signal: req.signal } : {}) })
    ).map((c) => c.name);
    const out: Diagnostic[] = [];
    const pk = Array.isArray(model.primary_key) ? model.primary_key : [model.primary_key];
    for (const col of pk)
      if (!columns.includes(col))
        out.push(
          diag(
            'missing_primary_key_column',
            `model.${name}: the query returns no primary key column \`${col}\``,
            `it returns: ${columns.join(', ')}`,
          ),
        );
    for (const [mname, m] of Object.entries((config.doc.mappings ?? {}) as Record<string, Mapping>)) {
      if (m.model !== name) continue;
      for (const ref of compileFields(m.fields).missingColumns(columns))
        out.push({
          severity: 'error',
          code: 'missing_column',
          summary: `mapping.${mname}: field \`${ref.field}\` reads \`${ref.path}\`, but model.${name} returns no column \`${ref.column}\``,
          detail: `the query returns: ${columns.join(', ')}`,
          address: `mapping.${mname}`,
          ...(config.map.value(['mappings', mname, 'fields']) ?? {}),
        });
    }
    return out;
  } catch (e) {
    return [
      diag(
        'query_failed',
        `model.${name}: the query failed on source.${model.source}: ${errorMessage(e)}`,
        hintOf(e),
      ),
    ];
  } finally {
    await closeQuietly(session);
  }
}

async function checkDestination(req: RefreshRequest, name: string): Promise<Diagnostic[]> {
  const { config } = req;
  const m = config.doc.mappings?.[name] as Mapping | undefined;
  if (!m) return [];
  const dest = config.resources.find((r) => r.address === `destination.${m.destination}`);
  if (!dest) return [];
  let session: Awaited<ReturnType<typeof openSession>> | undefined;
  const at = config.map.key(['mappings', name]) ?? {};
  try {
    session = await openSession({ resource: dest, configDir: config.dir });
    if (!session.destination?.check) return [];
    const problems = await session.destination.check({
      action: m.action,
      options: { ...(m.table ? { table: m.table } : {}), ...(m.key ? { key: m.key } : {}) },
      fields: Object.keys(m.fields),
    });
    return problems.map((p) => ({
      severity: 'error' as const,
      code: p.code,
      summary: `mapping.${name}: destination.${m.destination}: ${p.message}`,
      ...(p.hint ? { detail: p.hint } : {}),
      address: `mapping.${name}`,
      ...at,
    }));
  } catch (e) {
    return [
      {
        severity: 'error',
        code: 'destination_unreachable',
        summary: `mapping.${name}: cannot check destination.${m.destination}: ${errorMessage(e)}`,
        ...(hintOf(e) ? { detail: hintOf(e)! } : {}),
        address: `mapping.${name}`,
        ...at,
      },
    ];
  } finally {
    await closeQuietly(session);
  }
}

function hintOf(e: unknown): string | undefined {
  return (e as { hint?: string }).hint ?? undefined;
}
