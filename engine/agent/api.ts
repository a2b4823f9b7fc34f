import { listNotifications } from '../alerts/in-app.js';
import { ProviderError, UserError } from '../errors.js';
import {
  enqueueClear,
  enqueueProfiles,
  type Profile,
  queueDepth,
  resync,
  segmentStats,
} from '../segments/index.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { listOverview, parseTime } from '../sync/overview.js';
import { replayRun } from '../sync/replay.js';
import { requestReset } from '../sync/run.js';
import { type ApiRequest, type ApiResponse, HttpError, type Route } from './http.js';
import type { Leases } from './leases.js';
import type { AgentLogger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import { mappingLease } from './recovery.js';
import { finishedRun } from './report.js';
import type { Scheduler } from './scheduler.js';

/** What the API reads and drives. */
export interface ApiContext {
  readonly store: RuntimeStore;
  readonly configDir: string;
  readonly state: () => StateDocument | null;
  readonly scheduler: Scheduler;
  readonly leases: Leases;
  readonly metrics: AgentMetrics;
  readonly log: AgentLogger;
  readonly stopping: () => boolean;
  readonly startedAt: number;
}

const ok = (json: unknown, status = 200): ApiResponse => ({ status, json });

/** The agent's HTTP endpoints: health, metrics and the JSON API (README "Running as a daemon"). */
export function apiRoutes(ctx: ApiContext): Route[] {
  const route = (
    method: Route['method'],
    path: string,
    handle: (req: ApiRequest) => Promise<ApiResponse>,
  ): Route => ({
    method,
    path,
    handle: (req) => handle(req).catch(toHttpError),
  });
  const requireResource = (kind: 'mapping' | 'segment' | 'segment_integration', name: string) => {
    if (!ctx.state()?.resources.some((r) => r.address === `${kind}.${name}`))
      throw new HttpError(
        404,
        `unknown_${kind}`,
        `${kind.replace('_', ' ')} ${name} is not in the applied state`,
        {
          hint: 'names come from the applied state: see `backflow state list`',
        },
      );
  };
  const refuseWhileStopping = () => {
    if (ctx.stopping())
      throw new HttpError(503, 'shutting_down', 'the agent is shutting down', {
        headers: { 'retry-after': '5' },
      });
  };

  return [
    route('GET', '/healthz', async () => {
      const state = ctx.state();
      let store = 'ok';
      try {
        await ctx.store.sql.all('SELECT 1 AS one');
      } catch (e) {
        store = `unreachable: ${(e as Error).message}`;
      }
      const healthy = store === 'ok' && !ctx.stopping();
      return ok(
        {
          status: ctx.stopping() ? 'stopping' : healthy ? 'ok' : 'degraded',
          agent: ctx.leases.holder.id,
          uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
          state: state ? { serial: state.serial, lineage: state.lineage } : null,
          store: { kind: ctx.store.kind, status: store },
          running: ctx.scheduler.running(),
        },
        healthy ? 200 : 503,
      );
    }),
    route('GET', '/metrics', async () => ({
      status: 200,
      text: await ctx.metrics.text(),
      contentType: ctx.metrics.contentType,
    })),

    route('GET', '/api/syncs', async (req) => {
      const q = req.query;
      const runs = await listOverview({
        store: ctx.store,
        state: ctx.state(),
        name: (n) => `query parameter ${n}`,
        options: {
          status: q.getAll('status'),
          model: q.getAll('model'),
          destination: q.getAll('destination'),
          mapping: q.getAll('mapping'),
          ...optional('since', q.get('since')),
          ...optional('until', q.get('until')),
          ...optional('period', q.get('period')),
          ...optional('mappingStatus', q.get('mapping_status')),
          ...optional('search', q.get('search')),
          ...optional('limit', q.get('limit')),
          all: flag(q.get('all')),
        },
      });
      return ok({ runs });
    }),
    route('GET', '/api/syncs/:id', async (req) => {
      const run = await ctx.store.getRun(req.params.id!);
      if (!run) {
        const queued = ctx.scheduler.queued(req.params.id!);
        if (queued)
          return ok({
            id: queued.id,
            mapping: queued.mapping,
            status: queued.status,
            requested_at: queued.requested_at,
          });
        throw new HttpError(404, 'unknown_run', `no sync run ${req.params.id}`, {
          hint: 'list runs with GET /api/syncs?all=true',
        });
      }
      const limit = Number(req.query.get('failed_limit') ?? 100);
      const failed = await ctx.store.listRunRecords(run.id, {
        status: 'failed',
        limit: Number.isSafeInteger(limit) && limit > 0 ? limit : 100,
      });
      return ok({ ...run, failed_records: failed });
    }),
    route('POST', '/api/mappings/:name/sync', async (req) => {
      const name = req.params.name!;
      requireResource('mapping', name);
      refuseWhileStopping();
      if (flag(req.query.get('reset'))) await requestReset(ctx.store, name);
      const queued = ctx.scheduler.request(name);
      if (!flag(req.query.get('wait')))
        return ok(
          {
            id: queued.id,
            mapping: name,
            status: queued.status,
            requested_at: queued.requested_at,
            href: `/api/syncs/${queued.id}`,
          },
          202,
        );
      const run = await queued.done;
      if (!run)
        throw ctx.stopping()
          ? new HttpError(503, 'shutting_down', 'the agent stopped before the sync could run')
          : new HttpError(500, 'sync_not_run', `the sync of ${name} could not run; see the agent log`);
      return ok(run);
    }),
    route('POST', '/api/mappings/:name/reset', async (req) => {
      const name = req.params.name!;
      requireResource('mapping', name);
      await requestReset(ctx.store, name);
      return ok({
        mapping: name,
        reset: true,
        message: `the next sync of ${name} sends every record the model returns`,
      });
    }),
    route('POST', '/api/syncs/:id/replay', async (req) => {
      refuseWhileStopping();
      const original = await ctx.store.getRun(req.params.id!);
      if (!original) throw new HttpError(404, 'unknown_run', `no sync run ${req.params.id}`);
      requireResource('mapping', original.mapping);
      const state = ctx.state();
      const outcome = await ctx.leases.withLease(mappingLease(original.mapping), ({ signal }) =>
        replayRun({ runId: original.id, state, configDir: ctx.configDir, store: ctx.store, signal }),
      );
      if (!outcome.ran)
        throw new HttpError(409, 'mapping_busy', `a sync of ${original.mapping} is running`, {
          hint: 'replay when it has finished',
          headers: { 'retry-after': '5' },
        });
      const run = outcome.value;
      await finishedRun({
        run,
        state,
        store: ctx.store,
        configDir: ctx.configDir,
        log: ctx.log,
        metrics: ctx.metrics,
        event: 'run_finished',
      });
      return ok(run);
    }),

    route('POST', '/api/segments/:name/profiles', async (req) => enqueue(req, 'add')),
    route('DELETE', '/api/segments/:name/profiles', async (req) => enqueue(req, 'remove')),
    route('POST', '/api/segments/:name/clear', async (req) => {
      requireResource('segment', req.params.name!);
      return ok(await enqueueClear({ store: ctx.store, state: ctx.state(), segment: req.params.name! }), 202);
    }),
    route('POST', '/api/segments/:name/resync', async (req) => {
      requireResource('segment', req.params.name!);
      const integration = req.query.get('integration');
      return ok(
        await resync({
          store: ctx.store,
          state: ctx.state(),
          segment: req.params.name!,
          ...(integration ? { integration } : {}),
        }),
        202,
      );
    }),
    route('GET', '/api/segment-integrations/:name/stats', async (req) => {
      requireResource('segment_integration', req.params.name!);
      const since = new Date(parseTime(req.query.get('since') ?? '24h', 'query parameter since'));
      const until = req.query.get('until');
      return ok(
        await segmentStats({
          store: ctx.store,
          integration: req.params.name!,
          since,
          ...(until ? { until: new Date(parseTime(until, 'query parameter until')) } : {}),
        }),
      );
    }),
    route('GET', '/api/segment-queues', async () =>
      ok({ queues: await queueDepth({ store: ctx.store, state: ctx.state() }) }),
    ),
    route('GET', '/api/notifications', async (req) => {
      const limit = Number(req.query.get('limit') ?? 100);
      return ok({
        notifications: await listNotifications({
          store: ctx.store,
          unread: flag(req.query.get('unread')),
          limit: Number.isSafeInteger(limit) && limit > 0 ? Math.min(limit, 1000) : 100,
        }),
      });
    }),
  ];

  async function enqueue(req: ApiRequest, kind: 'add' | 'remove'): Promise<ApiResponse> {
    requireResource('segment', req.params.name!);
    const body = await req.json();
    const list = Array.isArray(body) ? body : (body as { profiles?: unknown } | null)?.profiles;
    if (!Array.isArray(list) || list.some((p) => p === null || typeof p !== 'object' || Array.isArray(p)))
      throw new HttpError(400, 'invalid_profiles', 'the body must be a JSON array of profile objects', {
        hint: 'e.g. [{"CustomID": "42", "Email": "ada@example.com"}]',
      });
    return ok(
      await enqueueProfiles({
        store: ctx.store,
        state: ctx.state(),
        segment: req.params.name!,
        kind,
        profiles: list as Profile[],
      }),
      202,
    );
  }
}

function optional<K extends string>(key: K, value: string | null): { [P in K]?: string } {
  return (value === null || value === '' ? {} : { [key]: value }) as { [P in K]?: string };
}

function flag(value: string | null): boolean {
  return value !== null && ['', '1', 'true', 'yes'].includes(value.toLowerCase());
}

/** A user's mistake is a 400 with its hint, a remote failure a 502; anything else is ours (500). */
function toHttpError(e: unknown): never {
  if (e instanceof HttpError) throw e;
  if (e instanceof UserError)
    throw new HttpError(400, 'invalid_request', e.message, e.hint ? { hint: e.hint } : {});
  if (e instanceof ProviderError) throw new HttpError(502, e.code, e.message, e.hint ? { hint: e.hint } : {});
  throw e;
}
