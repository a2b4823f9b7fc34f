import { randomUUID } from 'node:crypto';
import type { ActionName, Change } from '../../providers/sdk.js';
import { closeQuietly, openSession } from '../connections.js';
import { errorMessage, ProviderError, UserError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { ErrorCollector } from './errors.js';
import { hashRecord, idempotencyKey } from './hash.js';
import { resolveMapping } from './resolve.js';
import { emptyRun, type RunRecord, type SyncRun } from './types.js';

export interface ReplayRequest {
  readonly runId: string;
  readonly state: StateDocument | null;
  readonly configDir: string;
  readonly store: RuntimeStore;
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
}

/**
 * Re-sends every record a run selected, with the payload that run sent, as a new run (trigger `replay`).
 * The snapshot is not changed: a replay repeats history, it does not diff.
 */
export async function replayRun(req: ReplayRequest): Promise<SyncRun> {
  const original = await req.store.getRun(req.runId);
  if (!original) throw new UserError(`no sync run ${req.runId}`, { hint: 'list runs with `backflow syncs`' });
  const r = resolveMapping(req.state, original.mapping);
  const now = req.now ?? (() => new Date());
  const started = now();
  const base = emptyRun({
    id: `run_${started
      .toISOString()
      .replace(/[-:T.Z]/g, '')
      .slice(0, 14)}_${randomUUID().slice(0, 8)}`,
    mapping: r.name,
    model: r.modelName,
    source: r.source.name,
    destination: r.destination.name,
    action: r.mapping.action,
    trigger: 'replay',
    started_at: started.toISOString(),
  });
  await req.store.insertRun(base);
  const errors = new ErrorCollector();
  const counts = { attempted: 0, succeeded: 0, failed: 0 };
  const by: Record<Change, { succeeded: number; failed: number }> = {
    added: { succeeded: 0, failed: 0 },
    updated: { succeeded: 0, failed: 0 },
    deleted: { succeeded: 0, failed: 0 },
  };
  const extract = { total: 0, added: 0, updated: 0, deleted: 0 };
  let session: Awaited<ReturnType<typeof openSession>> | undefined;
  let runError = false;
  try {
    session = await openSession({ resource: r.destination, configDir: req.configDir });
    const options = {
      ...(r.mapping.table ? { table: r.mapping.table } : {}),
      ...(r.mapping.key ? { key: r.mapping.key } : {}),
    };
    // The run's records are read a page at a time and sent in batches of the mapping's batch_size.
    const pages = async function* (store: RuntimeStore, runId: string, size: number) {
      for (let offset = 0; ; ) {
        const raw = await store.listRunRecords(runId, { limit: 1000, offset });
        if (raw.length === 0) return;
        offset += raw.length;
        const sendable = raw.filter((x) => x.status !== 'expired' && x.key !== '(none)');
        for (let i = 0; i < sendable.length; i += size) yield sendable.slice(i, i + size);
      }
    };
    for await (const page of pages(req.store, req.runId, Math.max(1, r.mapping.batch_size))) {
      for (const rec of page) {
        extract.total++;
        extract[rec.change]++;
      }
      let results: Awaited<ReturnType<NonNullable<typeof session.destination>['load']>>;
      try {
        results = await session.destination!.load({
          mapping: r.name,
          syncId: base.id,
          action: r.mapping.action as ActionName,
          options,
          records: page.map((x) => ({
            change: x.change,
            key: x.key,
            idempotencyKey: idempotencyKey(r.name, x.key, hashRecord(x.payload)),
            fields: x.payload,
          })),
          ...(req.signal ? { signal: req.signal } : {}),
        });
      } catch (e) {
        results = page.map(() => ({
          status: 'retry' as const,
          code: e instanceof ProviderError ? e.code : 'load_failed',
          message: errorMessage(e),
        }));
      }
      const records: RunRecord[] = [];
      page.forEach((x, i) => {
        const res = results[i]!;
        counts.attempted++;
        if (res.status === 'ok') {
          counts.succeeded++;
          by[x.change].succeeded++;
          records.push({ key: x.key, change: x.change, status: 'ok', payload: x.payload });
        } else {
          counts.failed++;
          by[x.change].failed++;
          errors.add(res.code, res.message, x.payload ?? { key: x.key }, res.status);
          records.push({
            key: x.key,
            change: x.change,
            status: 'failed',
            code: res.code,
            message: res.message,
            payload: x.payload,
          });
        }
      });
      await req.store.addRunRecords(base.id, records);
    }
  } catch (e) {
    runError = true;
    errors.add(e instanceof ProviderError ? e.code : 'replay_failed', errorMessage(e), undefined, 'run', 0);
  } finally {
    await closeQuietly(session);
  }
  const finished = now();
  const run: SyncRun = {
    ...base,
    status:
      runError || (counts.failed > 0 && counts.succeeded === 0)
        ? 'failed'
        : counts.failed > 0
          ? 'partial_success'
          : 'success',
    finished_at: finished.toISOString(),
    duration_ms: finished.getTime() - started.getTime(),
    extract,
    load: { ...counts, added: by.added, updated: by.updated, deleted: by.deleted },
    errors: errors.toErrors(),
  };
  await req.store.updateRun(run);
  return run;
}
