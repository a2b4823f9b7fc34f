import { retryDeliveries } from '../alerts/deliver.js';
import { parseDuration } from '../config/durations.js';
import type { BackflowConfig } from '../config/types.gen.js';
import { UserError } from '../errors.js';
import { queueDepth } from '../segments/index.js';
import { openStateBackend } from '../state/index.js';
import type { StateBackend, StateDocument } from '../state/types.js';
import { openStore } from '../store/index.js';
import type { RuntimeStore } from '../store/types.js';
import { apiRoutes } from './api.js';
import { type HttpServer, parseListen, serve } from './http.js';
import { currentHolder, Leases } from './leases.js';
import { type AgentLogger, createLogger } from './logger.js';
import { AgentMetrics } from './metrics.js';
import { recoverRuns } from './recovery.js';
import { Scheduler } from './scheduler.js';
import { SegmentWork } from './segment-work.js';
import { lastSuccessByMapping, StateWatch } from './state-watch.js';

export const DEFAULT_LISTEN = '127.0.0.1:7465';
export const DEFAULT_LEASE_MS = 60_000;
export const DEFAULT_POLL_MS = 2_000;
/** In-flight syncs get this long to finish after SIGTERM before they are aborted. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** After the abort, how long the agent waits for syncs to wind down before giving up on them. */
export const ABORT_WAIT_MS = 15_000;
/** Pending alert deliveries (email, Slack) are retried this often. */
const ALERT_TICK_MS = 15_000;

export interface AgentRequest {
  /** Absolute config directory (only `settings` is read from its files; the rest is the applied state). */
  readonly configDir: string;
  readonly settings: BackflowConfig['settings'];
  /** `--listen`; default `settings.agent.listen`, then 127.0.0.1:7465. */
  readonly listen?: string;
  /** `--token` / BACKFLOW_TOKEN: required beyond loopback; then every request must carry it. */
  readonly token?: string;
  /** `--concurrency`; default `settings.agent.concurrency`, then 4. */
  readonly concurrency?: number;
  /** Run what is due once and stop (no HTTP). */
  readonly once?: boolean;
  readonly shutdownGraceMs?: number;
  /** Where log lines go (JSON lines unless it is a terminal). */
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env?: NodeJS.ProcessEnv;
}

/** A started agent. */
export interface RunningAgent {
  readonly holder: string;
  /** The HTTP address as bound (undefined with `once`). */
  readonly address: string | undefined;
  /** Settles with the exit code: 0 after a clean stop (or a `once` pass without failed runs), else 1. */
  readonly exited: Promise<number>;
  /** Stops scheduling and shuts down; with `now`, in-flight work is aborted at once. */
  stop(opts?: { now?: boolean }): void;
}

interface Settings {
  readonly listen: ReturnType<typeof parseListen>;
  readonly token: string | undefined;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly pollMs: number;
}

/** Checks flags and settings before anything is opened. */
export function agentSettings(req: AgentRequest): Settings {
  const agent = req.settings?.agent;
  const listen = parseListen(req.listen ?? agent?.listen ?? DEFAULT_LISTEN);
  const token = req.token === '' ? undefined : req.token;
  if (!req.once && !listen.loopback && !token)
    throw new UserError(
      `listening on ${listen.host}:${listen.port} (beyond loopback) needs --token TOKEN or BACKFLOW_TOKEN`,
      {
        hint: 'pass --token TOKEN or set BACKFLOW_TOKEN (clients then send `Authorization: Bearer TOKEN`), or listen on 127.0.0.1',
      },
    );
  const concurrency = req.concurrency ?? agent?.concurrency ?? 4;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new UserError(`--concurrency ${concurrency} is out of range`, {
      hint: 'use a whole number from 1 to 64',
    });
  const leaseMs = duration(agent?.lease, DEFAULT_LEASE_MS, 'settings.agent.lease');
  if (leaseMs < 1_000) throw new UserError('settings.agent.lease must be at least 1s');
  return {
    listen,
    token,
    concurrency,
    leaseMs,
    pollMs: duration(agent?.poll_interval, DEFAULT_POLL_MS, 'settings.agent.poll_interval'),
  };
}

function duration(text: string | undefined, fallback: number, where: string): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0)
    throw new UserError(`${where}: ${text} is not a duration`, { hint: 'e.g. 30s, 5m' });
  return ms;
}

/** Starts `backflow agent`: recovery, then scheduling, segment queues, HTTP, state polling. */
export async function startAgent(req: AgentRequest): Promise<RunningAgent> {
  const settings = agentSettings(req);
  const log = createLogger({ out: req.out });
  const opened: { backend?: StateBackend; store?: RuntimeStore } = {};
  try {
    opened.backend = await openStateBackend(req.configDir, req.settings);
    opened.store = await openStore({ url: req.settings?.store?.url, configDir: req.configDir });
    const state = await opened.backend.read();
    return await run({ req, settings, log, backend: opened.backend, store: opened.store, state });
  } catch (e) {
    await opened.store?.close().catch(() => undefined);
    await opened.backend?.close().catch(() => undefined);
    throw e;
  }
}

async function run(ctx: {
  req: AgentRequest;
  settings: Settings;
  log: AgentLogger;
  backend: StateBackend;
  store: RuntimeStore;
  state: StateDocument | null;
}): Promise<RunningAgent> {
  const { req, settings, log, backend, store } = ctx;
  const configDir = req.configDir;
  const watch = new StateWatch({ backend, initial: ctx.state, pollMs: settings.pollMs, log });
  const state = () => watch.current;
  const leases = new Leases(
    store.sql,
    currentHolder((req.env ?? process.env).BACKFLOW_AGENT_NAME),
    settings.leaseMs,
  );
  let scheduler: Scheduler | undefined;
  const metrics = new AgentMetrics({
    lastSuccess: () => lastSuccessByMapping(store, state()),
    queueDepth: async () => (await queueDepth({ store })).map((q) => ({ ...q, depth: q.events })),
    running: () => scheduler?.size ?? 0,
    serial: () => state()?.serial ?? 0,
    onError: (e) =>
      log.warn('metrics_error', `a store-backed metric could not be read: ${(e as Error).message}`),
  });
  scheduler = new Scheduler({
    store,
    leases,
    configDir,
    state,
    concurrency: settings.concurrency,
    log,
    metrics,
    ...(req.env ? { env: req.env } : {}),
  });
  const segments = new SegmentWork({ store, configDir, state, leases, log, metrics });
  const recover = () => recoverRuns({ store, state: state(), configDir, log, leases });
  const startedAt = Date.now();

  if (!ctx.state) log.warn('no_state', 'nothing is applied yet: the agent waits for `backflow apply`');
  const abandoned = await recover();
  if (abandoned)
    log.info(
      'recovered',
      `marked ${abandoned} interrupted run(s) as abandoned; their next syncs re-send what was not confirmed`,
      { abandoned },
    );

  const close = async () => {
    await leases.releaseAll().catch(() => undefined);
    await store.close().catch(() => undefined);
    await backend.close().catch(() => undefined);
  };

  if (req.once) {
    const exited = (async () => {
      try {
        const runs = await scheduler.runDueOnce();
        const failedQueries = await segments.runOnce();
        await retryDeliveries({
          store,
          state: state(),
          configDir,
          log: (m) => log.info('alert_retry', m),
        }).catch(() => 0);
        const failed = runs.filter((r) => r.status === 'failed').length;
        log.info(
          'once_complete',
          `ran ${runs.length} sync(s), ${failed} failed; ${failedQueries} segment queries failed`,
          {
            runs: runs.length,
            failed,
            segment_queries_failed: failedQueries,
          },
        );
        return failed > 0 || failedQueries > 0 ? 1 : 0;
      } finally {
        await close();
      }
    })();
    return { holder: leases.holder.id, address: undefined, exited, stop: () => scheduler?.abortAll() };
  }

  let stopping = false;
  const http: HttpServer = await serve({
    listen: settings.listen,
    token: settings.token,
    routes: apiRoutes({
      store,
      configDir,
      state,
      scheduler,
      leases,
      metrics,
      log,
      stopping: () => stopping,
      startedAt,
    }),
    onError: (e, r) => log.error('http_error', `${r.method} ${r.path}: ${(e as Error).stack ?? String(e)}`),
  }).catch(async (e) => {
    await close();
    throw e;
  });

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, fn: () => Promise<unknown>) => {
    let busy = false;
    timers.push(
      setInterval(() => {
        if (busy || stopping) return;
        busy = true;
        fn()
          .catch((e: unknown) => log.error('agent_error', (e as Error).message))
          .finally(() => {
            busy = false;
          });
      }, ms),
    );
  };
  watch.onChange(() => scheduler?.stateChanged());
  watch.start();
  every(Math.max(5_000, settings.leaseMs / 2), recover);
  every(ALERT_TICK_MS, () =>
    retryDeliveries({ store, state: state(), configDir, log: (m) => log.info('alert_retry', m) }),
  );
  scheduler.start();
  segments.start();
  log.info(
    'agent_started',
    `agent ${leases.holder.id} listening on http://${http.address} (state serial ${ctx.state?.serial ?? 0}, ${store.kind} store, concurrency ${settings.concurrency})`,
    {
      agent: leases.holder.id,
      listen: http.address,
      state_serial: ctx.state?.serial ?? 0,
      store: store.kind,
      concurrency: settings.concurrency,
      lease_ms: settings.leaseMs,
    },
  );

  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const defaultGrace = req.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const shutdown = async (grace: number): Promise<number> => {
    log.info(
      'shutdown_started',
      `stopping: no new syncs; ${scheduler.size} in flight get ${grace / 1000}s to finish`,
      {
        in_flight: scheduler.running(),
      },
    );
    for (const t of timers) clearInterval(t);
    watch.stop();
    const httpClosed = http.close();
    const [syncsEnded, segmentsEnded] = await Promise.all([
      scheduler.stop(grace, ABORT_WAIT_MS),
      segments.stop(grace, ABORT_WAIT_MS),
    ]);
    const ended = syncsEnded && segmentsEnded;
    await httpClosed;
    await close();
    log.info('shutdown_complete', ended ? 'stopped' : 'stopped with syncs that did not end in time', {
      clean: ended,
    });
    return ended ? 0 : 1;
  };
  return {
    holder: leases.holder.id,
    address: http.address,
    exited,
    stop: (opts) => {
      if (stopping) {
        if (opts?.now) scheduler.abortAll();
        return;
      }
      stopping = true;
      if (opts?.now) scheduler.abortAll();
      shutdown(opts?.now ? 0 : defaultGrace).then(resolveExit, (e: unknown) => {
        log.error('shutdown_error', (e as Error).message);
        resolveExit(1);
      });
    },
  };
}
