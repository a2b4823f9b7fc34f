import { randomUUID } from 'node:crypto';
import type { ActionName, Change, LoadRecord, RecordResult, Session } from '../../providers/sdk.js';
import { closeQuietly, destinationOf, openSession, sourceOf } from '../connections.js';
import { errorMessage, ProviderError, UserError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { ErrorCollector } from './errors.js';
import { compileFields } from './fields.js';
import { hashRecord, idempotencyKey, recordKey } from './hash.js';
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
 * Re-sends every record a run selected, as a new run (trigger `replay`), with the data the model has
 * for it now (records are kept by key: a million loaded payloads are not stored twice). A record that
 * failed is replayed too. The snapshot is not changed: a replay repeats a delivery, it does not diff.
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
  let source: Session | undefined;
  let destination: Session | undefined;
  let runError = false;
  try {
    // What the run selected: key → change (records that could not be identified, or had expired, were
    // never sent and are not sent now).
    const selected = new Map<string, Change>();
    for (let offset = 0; ; ) {
      const page = await req.store.listRunRecords(req.runId, { limit: 1000, offset });
      if (page.length === 0) break;
      offset += page.length;
      for (const x of page) if (x.status !== 'expired' && x.key !== '(none)') selected.set(x.key, x.change);
    }
    source = await openSession({ resource: r.source, configDir: req.configDir });
    destination = await openSession({ resource: r.destination, configDir: req.configDir });
    const read = sourceOf(source, r.source.address);
    const load = destinationOf(destination, r.destination.address);
    const options = {
      ...(r.mapping.table ? { table: r.mapping.table } : {}),
      ...(r.mapping.key ? { key: r.mapping.key } : {}),
    };
    const mapper = compileFields(r.mapping.fields);
    const size = Math.max(1, r.mapping.batch_size);
    let buffer: LoadRecord[] = [];
    const send = async (batch: LoadRecord[]) => {
      for (const x of batch) {
        extract.total++;
        extract[x.change]++;
      }
      let results: readonly RecordResult[];
      try {
        results = await load.load({
          mapping: r.name,
          syncId: base.id,
          action: r.mapping.action as ActionName,
          options,
          records: batch,
          ...(req.signal ? { signal: req.signal } : {}),
        });
      } catch (e) {
        results = batch.map(() => ({
          status: 'retry' as const,
          code: e instanceof ProviderError ? e.code : 'load_failed',
          message: errorMessage(e),
        }));
      }
      const records: RunRecord[] = [];
      batch.forEach((x, i) => {
        const res = results[i]!;
        counts.attempted++;
        if (res.status === 'ok') {
          counts.succeeded++;
          by[x.change].succeeded++;
          records.push({ key: x.key, change: x.change, status: 'ok', payload: null });
        } else {
          counts.failed++;
          by[x.change].failed++;
          errors.add(res.code, res.message, x.fields ?? { key: x.key }, res.status);
          records.push({
            key: x.key,
            change: x.change,
            status: 'failed',
            code: res.code,
            message: res.message,
            payload: x.fields,
          });
        }
      });
      await req.store.addRunRecords(base.id, records);
    };
    const queue = async (record: LoadRecord) => {
      buffer.push(record);
      if (buffer.length >= size) {
        const batch = buffer;
        buffer = [];
        await send(batch);
      }
    };
    // The selected records as the model has them now: a key still there goes with its current fields
    // (as `added` when that run deleted it), a key gone goes as a delete where the mapping sends deletes.
    for await (const rows of read.stream({
      sql: r.model.sql,
      batchSize: Math.max(size, 1000),
      ...(req.signal ? { signal: req.signal } : {}),
    })) {
      for (const row of rows) {
        const k = recordKey(row, r.model.primary_key);
        if (!k.ok || !selected.has(k.key)) continue;
        const was = selected.get(k.key)!;
        selected.delete(k.key);
        const mapped = mapper.map(row);
        if (!mapped.ok) {
          counts.attempted++;
          counts.failed++;
          by[was].failed++;
          errors.add(mapped.code, `field \`${mapped.field}\`: ${mapped.message}`, row);
          continue;
        }
        const change: Change = was === 'deleted' ? 'added' : was;
        const idem = idempotencyKey(r.name, k.key, hashRecord(mapped.fields));
        await queue({ change, key: k.key, idempotencyKey: idem, fields: mapped.fields });
      }
    }
    const sendsDeletes = (r.mapping.sync_on as readonly string[]).includes('deleted');
    for (const key of selected.keys())
      if (sendsDeletes)
        await queue({
          change: 'deleted',
          key,
          idempotencyKey: idempotencyKey(r.name, key, 'replay'),
          fields: null,
        });
    if (buffer.length) await send(buffer);
  } catch (e) {
    runError = true;
    errors.add(e instanceof ProviderError ? e.code : 'replay_failed', errorMessage(e), undefined, 'run', 0);
  } finally {
    await closeQuietly(source);
    await closeQuietly(destination);
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
