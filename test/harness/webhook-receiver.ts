/**
 * A real webhook destination in the test process: it counts deliveries per key, keeps the latest
 * fields per key (applying changes in arrival order, so it *is* the destination's state), and
 * records when each request of each sync run arrived and was answered, so tests can prove that
 * two runs of one mapping never overlapped.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRecord {
  readonly change: 'added' | 'updated' | 'deleted';
  readonly key: string;
  readonly fields: Record<string, unknown> | null;
}

export interface ReceivedBatch {
  readonly mapping: string;
  readonly syncId: string;
  readonly records: readonly ReceivedRecord[];
  readonly start: number;
  end: number;
  status: number;
}

export class WebhookReceiver {
  /** Per mapping: deliveries per key (answered 2xx or not). */
  private readonly delivered = new Map<string, Map<string, number>>();
  /** Per mapping, the destination's state: key → latest fields, from accepted records only. */
  private readonly states = new Map<string, Map<string, Record<string, unknown>>>();
  readonly batches: ReceivedBatch[] = [];
  /** Milliseconds each request takes before it is answered. */
  delayMs = 0;
  /** The status to answer a batch with (default 200). */
  answer: (batch: ReceivedBatch) => number = () => 200;
  private server!: Server;
  url = '';

  static async start(opts: { delayMs?: number } = {}): Promise<WebhookReceiver> {
    const r = new WebhookReceiver();
    r.delayMs = opts.delayMs ?? 0;
    r.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          mapping: string;
          sync_id: string;
          records: ReceivedRecord[];
        };
        const batch: ReceivedBatch = {
          mapping: body.mapping,
          syncId: body.sync_id,
          records: body.records,
          start: Date.now(),
          end: Number.NaN,
          status: 0,
        };
        r.batches.push(batch);
        const counts = r.deliveries(body.mapping);
        for (const rec of body.records) counts.set(rec.key, (counts.get(rec.key) ?? 0) + 1);
        setTimeout(() => {
          batch.status = r.answer(batch);
          const state = r.state(body.mapping);
          if (batch.status < 300)
            for (const rec of body.records) {
              if (rec.change === 'deleted') state.delete(rec.key);
              else state.set(rec.key, rec.fields ?? {});
            }
          batch.end = Date.now();
          res.writeHead(batch.status, { 'content-type': 'application/json' }).end('{}');
        }, r.delayMs);
      });
    });
    r.server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}/hook`;
    return r;
  }

  /** Deliveries per key of one mapping. */
  deliveries(mapping: string): Map<string, number> {
    const m = this.delivered.get(mapping) ?? new Map<string, number>();
    this.delivered.set(mapping, m);
    return m;
  }

  /** The destination's state for one mapping: key → latest accepted fields. */
  state(mapping: string): Map<string, Record<string, unknown>> {
    const m = this.states.get(mapping) ?? new Map<string, Record<string, unknown>>();
    this.states.set(mapping, m);
    return m;
  }

  /** Batches of one mapping grouped by sync run: first arrival and last answer of each. */
  runs(mapping: string): { syncId: string; start: number; end: number; batches: number }[] {
    const by = new Map<string, { syncId: string; start: number; end: number; batches: number }>();
    for (const b of this.batches.filter((x) => x.mapping === mapping)) {
      const end = Number.isNaN(b.end) ? Number.POSITIVE_INFINITY : b.end;
      const cur = by.get(b.syncId);
      if (!cur) by.set(b.syncId, { syncId: b.syncId, start: b.start, end, batches: 1 });
      else {
        cur.start = Math.min(cur.start, b.start);
        cur.end = Math.max(cur.end, end);
        cur.batches++;
      }
    }
    return [...by.values()].sort((a, b) => a.start - b.start);
  }

  /** Pairs of runs of `mapping` whose requests overlapped in time (should be none). */
  overlaps(mapping: string): string[] {
    const runs = this.runs(mapping);
    const out: string[] = [];
    let last = runs[0];
    for (const run of runs.slice(1)) {
      if (last && run.start < last.end) out.push(`${last.syncId} / ${run.syncId}`);
      if (!last || run.end > last.end) last = run;
    }
    return out;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
