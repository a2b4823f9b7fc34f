import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SyncRun } from '../sync/types.js';

/** One segment queue's depth: profiles waiting for an integration's batch. */
export interface QueueDepth {
  readonly integration: string;
  readonly segment: string;
  readonly depth: number;
}

export interface MetricsSources {
  /** Last run that completed (success or partial_success) per mapping, epoch ms (from the store). */
  readonly lastSuccess: () => Promise<ReadonlyMap<string, number>>;
  /** Segment queue depths, when segment integrations are available. */
  readonly queueDepth?: () => Promise<readonly QueueDepth[]>;
  /** Syncs running on this agent now. */
  readonly running: () => number;
  /** The applied state's serial this agent runs. */
  readonly serial: () => number;
  /** A store-backed gauge could not be read (it is left empty; the scrape still succeeds). */
  readonly onError?: (e: unknown) => void;
}

/**
 * The agent's Prometheus metrics, on a registry of its own (several agents in one test process must
 * not share counters). Counters count what this agent did; the store-backed gauges read the store
 * on every scrape, so all agents sharing one store report the same values for them.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly runs: Counter<'mapping' | 'status' | 'trigger'>;
  private readonly records: Counter<'mapping' | 'result'>;
  private readonly duration: Histogram<'mapping'>;
  private readonly segmentBatches: Counter<'integration' | 'result'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.runs = new Counter({
      name: 'backflow_sync_runs_total',
      help: 'Sync runs this agent finished, by mapping, status and trigger.',
      labelNames: ['mapping', 'status', 'trigger'],
      registers,
    });
    this.records = new Counter({
      name: 'backflow_sync_records_total',
      help: 'Records this agent sent to destinations, by mapping and result (succeeded, failed).',
      labelNames: ['mapping', 'result'],
      registers,
    });
    this.duration = new Histogram({
      name: 'backflow_sync_run_duration_seconds',
      help: 'How long sync runs took, by mapping.',
      labelNames: ['mapping'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.segmentBatches = new Counter({
      name: 'backflow_segment_batches_total',
      help: 'Segment integration queries this agent ran, by integration and result (succeeded, failed).',
      labelNames: ['integration', 'result'],
      registers,
    });
    new Gauge({
      name: 'backflow_last_successful_sync_timestamp_seconds',
      help: 'When the last run of each mapping that completed (success or partial_success) finished, in Unix seconds.',
      labelNames: ['mapping'],
      registers,
      async collect() {
        this.reset();
        try {
          for (const [mapping, ms] of await sources.lastSuccess()) this.set({ mapping }, ms / 1000);
        } catch (e) {
          sources.onError?.(e);
        }
      },
    });
    const queueDepth = sources.queueDepth;
    new Gauge({
      name: 'backflow_segment_queue_depth',
      help: 'Profile events waiting in segment queues, by integration and segment.',
      labelNames: ['integration', 'segment'],
      registers,
      async collect() {
        this.reset();
        if (!queueDepth) return;
        try {
          for (const q of await queueDepth())
            this.set({ integration: q.integration, segment: q.segment }, q.depth);
        } catch (e) {
          sources.onError?.(e);
        }
      },
    });
    new Gauge({
      name: 'backflow_agent_running_syncs',
      help: 'Syncs running on this agent now.',
      registers,
      collect() {
        this.set(sources.running());
      },
    });
    new Gauge({
      name: 'backflow_agent_state_serial',
      help: 'The serial of the applied state this agent runs.',
      registers,
      collect() {
        this.set(sources.serial());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'backflow_agent_' });
  }

  /** Counts a finished run. */
  observeRun(run: SyncRun): void {
    this.runs.inc({ mapping: run.mapping, status: run.status, trigger: run.trigger });
    if (run.load.succeeded)
      this.records.inc({ mapping: run.mapping, result: 'succeeded' }, run.load.succeeded);
    if (run.load.failed) this.records.inc({ mapping: run.mapping, result: 'failed' }, run.load.failed);
    if (run.duration_ms !== null) this.duration.observe({ mapping: run.mapping }, run.duration_ms / 1000);
  }

  observeSegmentQueries(integration: string, succeeded: number, failed: number): void {
    if (succeeded) this.segmentBatches.inc({ integration, result: 'succeeded' }, succeeded);
    if (failed) this.segmentBatches.inc({ integration, result: 'failed' }, failed);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
