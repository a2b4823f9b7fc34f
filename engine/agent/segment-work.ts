import { createHash } from 'node:crypto';
import { type FlushReport, flushDue, type RefreshReport, refreshModelSegments } from '../segments/index.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import type { Leases } from './leases.js';
import type { AgentLogger } from './logger.js';
import type { AgentMetrics } from './metrics.js';

/** How often segment queues are checked for batches that are due (by size or by timeout). */
export const SEGMENT_TICK_MS = 1_000;
/** A model-backed segment's membership is refreshed this often, and at once after an apply changes it. */
export const REFRESH_EVERY_MS = 15 * 60_000;

export const integrationLease = (integration: string) => `integration:${integration}`;
const segmentLease = (segment: string) => `segment:${segment}`;
/** Store meta: when the segment was last refreshed, and from which definition. */
const refreshMeta = (segment: string) => `segment_refresh:${segment}`;

interface Refreshed {
  readonly at: number;
  readonly digest: string;
}

export interface SegmentWorkRequest {
  readonly store: RuntimeStore;
  readonly configDir: string;
  readonly state: () => StateDocument | null;
  readonly leases: Leases;
  readonly log: AgentLogger;
  readonly metrics: AgentMetrics;
}

/**
 * Segment integrations' batches: each tick flushes, per integration and under its lease, the
 * queues whose batch is due. The segments engine keeps its own per-queue lease as well; the
 * integration lease makes one agent at a time run an integration's queries, as for mappings.
 */
export class SegmentWork {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** What this agent last knew of each segment's refresh (the store's meta is the truth). */
  private readonly refreshed = new Map<string, Refreshed>();
  private readonly controller = new AbortController();
  /** Warnings already logged: a flush repeats an unresolved one every tick. */
  private readonly warned = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly req: SegmentWorkRequest) {}

  start(): void {
    const loop = () => {
      this.tick();
      if (!this.stopping) this.timer = setTimeout(loop, SEGMENT_TICK_MS);
    };
    loop();
  }

  /** Flushes every integration's due batches once and waits for them (`--once`). */
  async runOnce(): Promise<number> {
    this.refreshDue();
    await Promise.all(this.inFlight.values());
    this.flushAll();
    await Promise.all(this.inFlight.values());
    return this.failed;
  }

  /** Failed queries seen so far (for `--once`'s exit code). */
  failed = 0;

  /** Stops ticking; in-flight flushes get `graceMs`, then are aborted between batches. */
  /** Resolves true when every flush ended (false: one was still stuck `abortMs` after the abort). */
  async stop(graceMs: number, abortMs: number): Promise<boolean> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const all = Promise.allSettled(this.inFlight.values()).then(() => true);
    if (await Promise.race([all, sleep(graceMs).then(() => false)])) return true;
    this.controller.abort(new Error('the agent is shutting down'));
    return Promise.race([all, sleep(abortMs).then(() => false)]);
  }

  private integrations(): string[] {
    return (this.req.state()?.resources ?? [])
      .filter((r) => r.kind === 'segment_integration')
      .map((r) => r.name);
  }

  private tick(): void {
    if (this.stopping) return;
    this.refreshDue();
    this.flushAll();
  }

  private refreshDue(): void {
    const now = Date.now();
    for (const s of this.modelSegments()) {
      const known = this.refreshed.get(s.name);
      if (
        this.inFlight.has(segmentLease(s.name)) ||
        (known?.digest === s.digest && now - known.at < REFRESH_EVERY_MS)
      )
        continue;
      this.track(segmentLease(s.name), this.refresh(s.name, s.digest));
    }
  }

  private flushAll(): void {
    for (const name of this.integrations()) {
      if (!this.inFlight.has(name)) this.track(name, this.flush(name));
    }
  }

  private track(key: string, work: Promise<void>): void {
    this.inFlight.set(
      key,
      work.finally(() => this.inFlight.delete(key)),
    );
  }

  /** Model-backed segments with a digest of what defines their membership (segment, model, source). */
  private modelSegments(): { name: string; digest: string }[] {
    const state = this.req.state();
    const find = (address: string) => state?.resources.find((r) => r.address === address)?.body;
    return (state?.resources ?? [])
      .filter((r) => r.kind === 'segment' && typeof r.body.members === 'object')
      .map((r) => {
        const model = find(`model.${(r.body.members as { model: string }).model}`);
        const source = model && find(`source.${String(model.source)}`);
        const digest = createHash('sha256')
          .update(JSON.stringify([r.body, model, source]))
          .digest('hex');
        return { name: r.name, digest };
      });
  }

  /** Refreshes one model-backed segment under its lease when it is due by time or its definition changed. */
  private async refresh(segment: string, digest: string): Promise<void> {
    const { store, configDir, leases, log } = this.req;
    try {
      await leases.withLease(
        segmentLease(segment),
        async ({ signal }) => {
          const stored = await store.getMeta(refreshMeta(segment));
          const last = stored ? (JSON.parse(stored) as Refreshed) : undefined;
          if (last && last.digest === digest && Date.now() - last.at < REFRESH_EVERY_MS) {
            this.refreshed.set(segment, last); // another agent refreshed it
            return;
          }
          const [report] = await refreshModelSegments({
            store,
            state: this.req.state(),
            configDir,
            segment,
            signal,
          });
          const done = { at: Date.now(), digest };
          await store.setMeta(refreshMeta(segment), JSON.stringify(done));
          this.refreshed.set(segment, done);
          if (report) this.reportRefresh(report);
        },
        { signal: this.controller.signal },
      );
    } catch (e) {
      this.failed++;
      // Try again after a while, not every tick.
      this.refreshed.set(segment, { at: Date.now() - REFRESH_EVERY_MS + 60_000, digest });
      log.error('segment_refresh_error', `segment ${segment}: the refresh failed: ${(e as Error).message}`, {
        segment,
      });
    }
  }

  private reportRefresh(r: RefreshReport): void {
    this.req.log.info(
      'segment_refresh',
      `segment ${r.segment}: refreshed from model ${r.model}: ${r.rows} rows, ${r.added} added, ${r.removed} removed, ${r.changed} changed`,
      { ...r },
    );
  }

  private async flush(integration: string): Promise<void> {
    const { store, configDir, leases, log } = this.req;
    try {
      const outcome = await leases.withLease(
        integrationLease(integration),
        ({ signal }) => flushDue({ store, state: this.req.state(), configDir, signal, integration }),
        { signal: this.controller.signal },
      );
      if (outcome.ran) this.report(integration, outcome.value);
    } catch (e) {
      this.failed++;
      log.error('segment_flush_error', `segment integration ${integration}: ${(e as Error).message}`, {
        integration,
      });
    }
  }

  private report(integration: string, r: FlushReport): void {
    this.failed += r.failed;
    this.req.metrics.observeSegmentQueries(integration, r.queries, r.failed);
    for (const w of r.warnings.filter((x) => !this.warned.has(x))) {
      this.warned.add(w);
      this.req.log.warn('segment_warning', `segment integration ${integration}: ${w}`, { integration });
    }
    if (r.batches.length === 0) return;
    const level = r.failed ? 'error' : 'info';
    this.req.log.log(
      level,
      'segment_flush',
      `segment integration ${integration}: ${r.queries} queries ok, ${r.failed} failed, ${r.profiles} profiles`,
      {
        integration,
        queries: r.queries,
        failed: r.failed,
        profiles: r.profiles,
        batches: r.batches.map((b) => ({
          segment: b.segment,
          kind: b.kind,
          profiles: b.profiles,
          status: b.status,
          attempt: b.attempt,
          ...(b.error ? { error: b.error } : {}),
        })),
      },
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
