import { randomUUID } from 'node:crypto';
import type { ActionName, Change, LoadRecord, RawRows, Row, Session } from '../../providers/sdk.js';
import { durationOr } from '../config/durations.js';
import { closeQuietly, destinationOf, openSession, sourceOf } from '../connections.js';
import { errorMessage, ProviderError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { PendingRecord, RuntimeStore, SnapshotEntry } from '../store/types.js';
import { ErrorCollector } from './errors.js';
import { compileFields } from './fields.js';
import { hashRecord, idempotencyKey, recordKey } from './hash.js';
import { KeyIndex, type Seen } from './key-index.js';
import { type ResolvedMapping, resolveMapping } from './resolve.js';
import { RawRecordRow, SourceTextMapping } from './source-text.js';
import { emptyRun, type RunRecord, type RunTrigger, type SyncRun } from './types.js';

export interface SyncRequest {
  readonly mapping: string;
  readonly state: StateDocument | null;
  readonly configDir: string;
  readonly store: RuntimeStore;
  readonly trigger: RunTrigger;
  /** Send every extracted record as added (a reset requested with `--reset`). */
  readonly reset?: boolean;
  readonly signal?: AbortSignal;
  readonly runId?: string;
  readonly now?: () => Date;
  /** Progress callback (rows extracted, records loaded) for terminals and the agent's logs. */
  readonly onProgress?: (p: { extracted: number; loaded: number }) => void;
  readonly env?: NodeJS.ProcessEnv;
}

interface Counts {
  total: number;
  added: number;
  updated: number;
  deleted: number;
  attempted: number;
  succeeded: number;
  failed: number;
  byChange: Record<Change, { succeeded: number; failed: number }>;
}

interface Selected {
  readonly record: LoadRecord;
  readonly hash: string | null;
}

const RESET_META = (mapping: string) => `reset:${mapping}`;
const EFFECT_META = (id: string) => `effect:${id}`;

/** Asks the next sync of `mapping` to send every record (`backflow reset`). */
export async function requestReset(store: RuntimeStore, mapping: string): Promise<void> {
  await store.setMeta(RESET_META(mapping), new Date().toISOString());
}

/**
 * One sync of a mapping: extract (streamed) ▶ diff against the last successful load ▶ map ▶ load in
 * batches ▶ record. Only records the destination accepted advance the snapshot, and only when the
 * run completes; failed records stay pending and are retried with the latest data until retry.max_age.
 */
export async function runSync(req: SyncRequest): Promise<SyncRun> {
  const resolved = resolveMapping(req.state, req.mapping);
  const now = req.now ?? (() => new Date());
  const started = now();
  const base = emptyRun({
    id:
      req.runId ??
      `run_${started
        .toISOString()
        .replace(/[-:T.Z]/g, '')
        .slice(0, 14)}_${randomUUID().slice(0, 8)}`,
    mapping: resolved.name,
    model: resolved.modelName,
    source: resolved.source.name,
    destination: resolved.destination.name,
    action: resolved.mapping.action,
    trigger: req.trigger,
    started_at: started.toISOString(),
  });
  await req.store.insertRun(base);
  const sync = new SyncExecution(req, resolved, base.id, now);
  let status: SyncRun['status'];
  try {
    await sync.execute();
    await sync.flushOutcomes();
    await req.store.commitSnapshot({ mapping: resolved.name, runId: base.id });
    await sync.dropStalePending();
    await sync.consumeTriggers();
    status = sync.status();
  } catch (e) {
    // What the destination confirmed before the failure advances the snapshot (SPEC §3: records that
    // loaded successfully advance it), so a record delivered here and deleted from the model before the
    // next run still gets its delete. Everything else stays as it was and is sent again.
    await sync
      .flushOutcomes()
      .then(() => req.store.commitSnapshot({ mapping: resolved.name, runId: base.id }))
      .catch(() => req.store.discardStage({ runId: base.id }).catch(() => undefined));
    await sync.saveRecords().catch(() => undefined);
    sync.runFailure(e);
    status = 'failed';
  }
  const finished = now();
  const run: SyncRun = {
    ...base,
    status,
    finished_at: finished.toISOString(),
    duration_ms: finished.getTime() - started.getTime(),
    extract: sync.extractCounts(),
    load: sync.loadCounts(),
    errors: sync.errors.toErrors(),
  };
  await req.store.updateRun(run);
  return run;
}

/**
 * A record to load. Its idempotency key (a SHA-256) is computed when a destination reads it: most
 * database destinations never do, and at a million records it is a second of CPU. A record made from
 * a raw row the mapping passes through unchanged decodes that row only when `fields` is read; a
 * destination that loads the source's text asks for that instead (`sourceText`).
 */
class OutgoingRecord implements LoadRecord {
  readonly #mapping: string;
  readonly #contentHash: string;
  #idempotencyKey: string | undefined;
  #fields: Record<string, unknown> | null | undefined;
  readonly #raw: RawRecordRow | undefined;

  constructor(
    mapping: string,
    readonly change: Change,
    readonly key: string,
    contentHash: string,
    fields: Fields,
  ) {
    this.#mapping = mapping;
    this.#contentHash = contentHash;
    if (fields instanceof RawRecordRow) this.#raw = fields;
    else this.#fields = fields;
  }

  get idempotencyKey(): string {
    this.#idempotencyKey ??= idempotencyKey(this.#mapping, this.key, this.#contentHash);
    return this.#idempotencyKey;
  }

  get fields(): Record<string, unknown> | null {
    if (this.#fields === undefined) this.#fields = this.#raw!.fields();
    return this.#fields;
  }

  get fieldNames(): readonly string[] | undefined {
    return this.#raw?.via.fieldNames;
  }

  sourceText(format: string, fields: readonly string[], types: readonly number[]): Uint8Array | undefined {
    return this.#raw?.sourceText(format, fields, types);
  }
}

/** A record's fields: mapped, null for a delete, or a raw row mapped on demand. */
type Fields = Record<string, unknown> | null | RawRecordRow;

/** The mapped fields of `f` (decoding a raw row). */
function fieldsOf(f: Fields): Record<string, unknown> | null {
  return f instanceof RawRecordRow ? f.fields() : f;
}

interface Candidate {
  readonly key: string;
  readonly change: Change;
  readonly fields: Fields;
  /** The content hash the snapshot takes once loaded (null: a delete). */
  readonly hash: string | null;
  /** For a delete: the hash last loaded (keeps its idempotency key unique per deletion). */
  readonly previousHash?: string;
}

type Mapper = ReturnType<typeof compileFields>;

class SyncExecution {
  readonly errors = new ErrorCollector();
  private readonly c: Counts = {
    total: 0,
    added: 0,
    updated: 0,
    deleted: 0,
    attempted: 0,
    succeeded: 0,
    failed: 0,
    byChange: {
      added: { succeeded: 0, failed: 0 },
      updated: { succeeded: 0, failed: 0 },
      deleted: { succeeded: 0, failed: 0 },
    },
  };
  private fullResync = false;
  private consumedEffects: string[] = [];
  private source: Session | undefined;
  private destination: Session | undefined;
  private readonly syncOn: ReadonlySet<Change>;
  private readonly maxAgeMs: number;
  private readonly keyColumns: readonly string[];
  private index = new KeyIndex();
  /** False when the mapping had no pending records at the start: no lookups or clean-ups needed. */
  private pendingPossible = true;
  private buffer: Selected[] = [];
  private records: RunRecord[] = [];
  private outcomes: { key: string; hash: string | null }[] = [];
  /** Batches being loaded while the next ones are extracted and diffed, oldest first. */
  private inflight: Promise<void>[] = [];
  /** How many: the destination's `concurrentLoads` (one by default). */
  private loadsInFlight = 1;

  constructor(
    private readonly req: SyncRequest,
    private readonly r: ResolvedMapping,
    private readonly runId: string,
    private readonly now: () => Date,
  ) {
    this.syncOn = new Set(r.mapping.sync_on as Change[]);
    this.maxAgeMs = durationOr(r.mapping.retry?.max_age, 14 * 86_400_000);
    const pk = r.model.primary_key;
    this.keyColumns = typeof pk === 'string' ? [pk] : pk;
  }

  async execute(): Promise<void> {
    const { store } = this.req;
    const name = this.r.name;
    const resetAt = await store.getMeta(RESET_META(name));
    const effects = (this.req.state?.pending_effects ?? []).filter(
      (e) => e.effect.kind === 'full_resync' && e.effect.mapping === name,
    );
    for (const e of effects) if (!(await store.getMeta(EFFECT_META(e.id)))) this.consumedEffects.push(e.id);
    this.fullResync = !!this.req.reset || !!resetAt || this.consumedEffects.length > 0;
    this.pendingPossible = (await store.countPending(name)) > 0;

    try {
      this.source = await this.open(this.r.source, 'source');
      this.destination = await this.open(this.r.destination, 'destination');
      const source = sourceOf(this.source, this.r.source.address);
      const destination = destinationOf(this.destination, this.r.destination.address);
      this.index = new KeyIndex(await store.snapshotSize(name));
      for await (const page of store.snapshotText({ mapping: name, pageSize: 10_000 }))
        if (!this.index.addSnapshotText(page.text, page.count))
          for (const [key, hash] of await page.entries()) this.index.addSnapshot(key, hash);

      this.loadsInFlight = Math.max(1, destination.concurrentLoads ?? 1);
      const mapper = compileFields(this.r.mapping.fields);
      const batchSize = this.r.mapping.batch_size;
      const request = {
        sql: this.r.model.sql,
        batchSize: Math.max(batchSize, 1000),
        ...(this.req.signal ? { signal: this.req.signal } : {}),
      };
      let extracted = 0;
      const progress = (n: number) => {
        extracted += n;
        this.req.onProgress?.({ extracted, loaded: this.c.succeeded });
      };
      if (source.streamRaw) {
        const text = SourceTextMapping.of(mapper);
        for await (const raw of source.streamRaw(request)) {
          this.checkAborted();
          await this.diffRaw(raw, mapper, text);
          progress(raw.length);
        }
      } else {
        for await (const rows of source.stream(request)) {
          this.checkAborted();
          await this.diffRows(rows, mapper);
          progress(rows.length);
        }
      }
      await this.flush(true);
      // Deleted records: snapshot keys this run never saw (a second scan, only when there are some).
      if (this.index.unseen > 0) {
        for await (const page of store.snapshotPages({ mapping: name, pageSize: batchSize })) {
          this.checkAborted();
          const gone = page.filter(([key]) => this.index.isUnseenSnapshotKey(key));
          if (gone.length) await this.deletedBatch(gone);
        }
        await this.flush(true);
      }
    } finally {
      await Promise.allSettled(this.inflight);
      await closeQuietly(this.source);
      await closeQuietly(this.destination);
    }
  }

  /** Marks the reset request and the resync effects as done (only after a completed run). */
  async consumeTriggers(): Promise<void> {
    const { store } = this.req;
    if (this.fullResync) await store.setMeta(RESET_META(this.r.name), null);
    for (const id of this.consumedEffects) await store.setMeta(EFFECT_META(id), this.runId);
  }

  /**
   * After a completed run: a pending record whose key the run neither extracted nor deleted is gone
   * from the model and was never loaded, so nothing is left to retry.
   */
  async dropStalePending(): Promise<void> {
    if (!this.pendingPossible) return;
    const stale = (await this.req.store.pendingKeys(this.r.name)).filter((k) => !this.index.wasSeen(k));
    if (stale.length) await this.req.store.clearPending(this.r.name, stale);
  }

  private async open(resource: ResolvedMapping['source'], role: string): Promise<Session> {
    try {
      return await openSession({
        resource,
        configDir: this.req.configDir,
        ...(this.req.signal ? { signal: this.req.signal } : {}),
        ...(this.req.env ? { env: this.req.env } : {}),
      });
    } catch (e) {
      if (e instanceof ProviderError || (e as { kind?: string }).kind === 'user') throw e;
      throw new ProviderError(`cannot connect to ${role} ${resource.address}: ${errorMessage(e)}`, {
        code: 'connection_failed',
        retryable: true,
        cause: e,
      });
    }
  }

  private checkAborted(): void {
    if (this.req.signal?.aborted)
      throw new ProviderError('the run was interrupted', { code: 'interrupted', retryable: true });
  }

  /** Rows decoded by the source: map and hash each, compare with the snapshot. */
  private async diffRows(rows: readonly Row[], mapper: Mapper): Promise<void> {
    const candidates: Candidate[] = [];
    for (const row of rows) {
      const seen = this.see(row, () => row);
      if (seen === undefined) continue;
      const fields = this.map(row, mapper, seen);
      if (fields === undefined) continue;
      this.consider(candidates, seen, fields, hashRecord(fields));
    }
    await this.select(candidates);
    await this.flush(false);
  }

  /**
   * Raw rows: an unchanged fingerprint skips the row undecoded; the fingerprint is the content hash.
   * Where most of a batch changed and the mapping passes columns through unchanged, the changed rows
   * go out as the source's text (RawRecordRow), decoded only if read. Where few changed, they are
   * decoded now, so a pending record does not keep its whole batch in memory.
   */
  private async diffRaw(raw: RawRows, mapper: Mapper, text: SourceTextMapping | undefined): Promise<void> {
    const candidates: Candidate[] = [];
    const asText = text?.covers(raw) ? raw : undefined;
    // Changed rows, when they may go as text: that depends on how many of the batch changed.
    const changed: { i: number; at: { key: string; seen: Seen }; hash: string }[] = [];
    for (let i = 0; i < raw.length; i++) {
      const at = this.see(raw.pick(i, this.keyColumns), () => raw.row(i));
      if (at === undefined) continue;
      const hash = raw.fingerprint(i);
      const unchanged =
        !this.fullResync && at.seen.kind === 'known' && this.index.sameContent(at.seen.slot, hash);
      if (unchanged) continue;
      if (asText) {
        changed.push({ i, at, hash });
        continue;
      }
      const fields = this.map(raw.row(i), mapper, at);
      if (fields !== undefined) this.push(candidates, at, fields, hash);
    }
    const dense = changed.length * 2 >= raw.length;
    for (const { i, at, hash } of changed) {
      const fields = dense ? new RawRecordRow(asText!, i, text!) : this.map(raw.row(i), mapper, at);
      if (fields !== undefined) this.push(candidates, at, fields, hash);
    }
    await this.select(candidates);
    await this.flush(false);
  }

  /** The row's key, marked seen; undefined (and the record failed) without a usable, unique key. */
  private see(keyRow: Row, fullRow: () => Row): { key: string; seen: Seen } | undefined {
    this.c.total++;
    const k = recordKey(keyRow, this.r.model.primary_key);
    if (!k.ok) {
      this.c.added++;
      this.fail('added', k.code, k.message, fullRow(), null);
      return undefined;
    }
    const seen = this.index.see(k.key);
    if (seen.kind === 'duplicate') {
      this.c.added++;
      this.fail(
        'added',
        'duplicate_primary_key',
        `the model returned primary key ${k.key} more than once`,
        fullRow(),
        k.key,
      );
      return undefined;
    }
    return { key: k.key, seen };
  }

  /** The row's mapped fields; undefined (and the record failed) when a field cannot be mapped. */
  private map(
    row: Row,
    mapper: Mapper,
    at: { key: string; seen: Seen },
  ): Record<string, unknown> | undefined {
    const mapped = mapper.map(row);
    if (mapped.ok) return mapped.fields;
    const change = this.changeOf(at.seen);
    this.c[change]++;
    this.fail(change, mapped.code, `field \`${mapped.field}\`: ${mapped.message}`, row, at.key);
    return undefined;
  }

  private changeOf(seen: Seen): 'added' | 'updated' {
    return seen.kind === 'new' || this.fullResync ? 'added' : 'updated';
  }

  /** Queues a mapped record unless the snapshot already holds the same content. */
  private consider(
    candidates: Candidate[],
    at: { key: string; seen: Seen },
    fields: Record<string, unknown>,
    hash: string,
  ): void {
    if (!this.fullResync && at.seen.kind === 'known' && this.index.sameContent(at.seen.slot, hash)) return;
    this.push(candidates, at, fields, hash);
  }

  /** Queues a changed record. */
  private push(
    candidates: Candidate[],
    at: { key: string; seen: Seen },
    fields: Record<string, unknown> | RawRecordRow,
    hash: string,
  ): void {
    const change = this.changeOf(at.seen);
    this.c[change]++;
    candidates.push({ key: at.key, change, fields, hash });
  }

  /** Applies sync_on and the retry window, queueing what is to be sent. */
  private async select(candidates: readonly Candidate[]): Promise<void> {
    if (candidates.length === 0) return;
    const { store } = this.req;
    const pending = this.pendingPossible
      ? await store.getPending(
          this.r.name,
          candidates.map((c) => c.key),
        )
      : new Map<string, PendingRecord>();
    const skipped: { key: string; hash: string | null }[] = [];
    const expired: Omit<PendingRecord, 'firstFailedAt' | 'attempts'>[] = [];
    const nowMs = this.now().getTime();
    for (const c of candidates) {
      if (!this.syncOn.has(c.change)) {
        // Not sent, yet the snapshot follows the model (a delete not sent still leaves it: the record is gone).
        skipped.push({ key: c.key, hash: c.hash });
        continue;
      }
      const p = pending.get(c.key);
      if (p && p.hash === c.hash && (p.expired || nowMs - Date.parse(p.firstFailedAt) > this.maxAgeMs)) {
        if (!p.expired) {
          expired.push({
            key: c.key,
            change: c.change,
            hash: c.hash,
            code: p.code,
            message: p.message,
            lastFailedAt: p.lastFailedAt,
            expired: true,
          });
          const fields = fieldsOf(c.fields);
          this.errors.add(
            'expired',
            `failed since ${p.firstFailedAt} (${p.code}: ${p.message}); no longer retried`,
            fields ?? { key: c.key },
            'rejected',
          );
          this.records.push({
            key: c.key,
            change: c.change,
            status: 'expired',
            code: 'expired',
            message: p.message,
            payload: fields,
          });
        }
        continue;
      }
      this.buffer.push({
        record: new OutgoingRecord(
          this.r.name,
          c.change,
          c.key,
          c.hash ?? c.previousHash ?? 'deleted',
          c.fields,
        ),
        hash: c.hash,
      });
    }
    if (skipped.length) await this.addOutcomes(skipped);
    if (expired.length) await store.upsertPending(this.r.name, expired);
  }

  private async deletedBatch(batch: readonly SnapshotEntry[]): Promise<void> {
    this.c.total += batch.length;
    this.c.deleted += batch.length;
    for (const [key] of batch) this.index.touch(key);
    await this.select(
      batch.map(([key, hash]) => ({
        key,
        change: 'deleted' as const,
        fields: null,
        hash: null,
        previousHash: hash,
      })),
    );
    await this.flush(false);
  }

  /** Loads full batches (all of the buffer when `all`), one batch in flight while the caller goes on. */
  private async flush(all: boolean): Promise<void> {
    const size = this.r.mapping.batch_size;
    while (this.buffer.length >= size || (all && this.buffer.length > 0)) {
      this.checkAborted();
      const batch = this.buffer.splice(0, size);
      while (this.inflight.length >= this.loadsInFlight) await this.inflight.shift();
      const loading = this.load(batch);
      loading.catch(() => undefined); // awaited by a later flush, or by execute's finally
      this.inflight.push(loading);
    }
    if (all) while (this.inflight.length) await this.inflight.shift();
    if (this.records.length >= 10_000 || (all && this.records.length)) await this.saveRecords();
  }

  private async load(batch: Selected[]): Promise<void> {
    const { store } = this.req;
    const options = {
      ...(this.r.mapping.table ? { table: this.r.mapping.table } : {}),
      ...(this.r.mapping.key ? { key: this.r.mapping.key } : {}),
    };
    let results: Awaited<ReturnType<NonNullable<Session['destination']>['load']>>;
    try {
      results = await this.destination!.destination!.load({
        mapping: this.r.name,
        syncId: this.runId,
        action: this.r.mapping.action as ActionName,
        options,
        records: batch.map((b) => b.record),
        ...(this.req.signal ? { signal: this.req.signal } : {}),
      });
    } catch (e) {
      if (this.req.signal?.aborted)
        throw new ProviderError('the run was interrupted', {
          code: 'interrupted',
          retryable: true,
          cause: e,
        });
      const code = e instanceof ProviderError ? e.code : 'load_failed';
      results = batch.map(() => ({ status: 'retry' as const, code, message: errorMessage(e) }));
    }
    if (results.length !== batch.length)
      throw new ProviderError(
        `destination.${this.r.destination.name} returned ${results.length} results for ${batch.length} records`,
        {
          code: 'provider_contract',
          retryable: false,
        },
      );
    const outcomes: { key: string; hash: string | null }[] = [];
    const failed: Omit<PendingRecord, 'firstFailedAt' | 'attempts'>[] = [];
    const at = this.now().toISOString();
    batch.forEach((b, i) => {
      const res = results[i]!;
      const change = b.record.change;
      this.c.attempted++;
      if (res.status === 'ok') {
        this.c.succeeded++;
        this.c.byChange[change].succeeded++;
        outcomes.push({ key: b.record.key, hash: b.hash });
        this.records.push({ key: b.record.key, change, status: 'ok', payload: null });
      } else {
        this.c.failed++;
        this.c.byChange[change].failed++;
        failed.push({
          key: b.record.key,
          change,
          hash: b.hash,
          lastFailedAt: at,
          code: res.code,
          message: res.message,
          expired: false,
        });
        this.errors.add(res.code, res.message, b.record.fields ?? { key: b.record.key }, res.status);
        this.records.push({
          key: b.record.key,
          change,
          status: 'failed',
          code: res.code,
          message: res.message,
          payload: b.record.fields,
        });
      }
    });
    await this.addOutcomes(outcomes);
    if (this.pendingPossible && outcomes.length)
      await store.clearPending(
        this.r.name,
        outcomes.map((o) => o.key),
      );
    if (failed.length) await store.upsertPending(this.r.name, failed);
    this.req.onProgress?.({ extracted: this.c.total, loaded: this.c.succeeded });
  }

  /** A record that failed before reaching the destination (key or mapping problem). */
  private fail(change: Change, code: string, message: string, row: Row, key: string | null): void {
    this.c.attempted++;
    this.c.failed++;
    this.c.byChange[change].failed++;
    this.errors.add(code, message, row);
    this.records.push({ key: key ?? '(none)', change, status: 'failed', code, message, payload: { ...row } });
  }

  /** Confirmed outcomes go to the store a few thousand at a time (flushOutcomes before a commit). */
  private async addOutcomes(list: readonly { key: string; hash: string | null }[]): Promise<void> {
    for (const o of list) this.outcomes.push(o);
    if (this.outcomes.length >= 5000) await this.flushOutcomes();
  }

  async flushOutcomes(): Promise<void> {
    const outcomes = this.outcomes;
    this.outcomes = [];
    if (outcomes.length) await this.req.store.addOutcomes({ runId: this.runId, outcomes });
  }

  async saveRecords(): Promise<void> {
    const records = this.records;
    this.records = [];
    if (records.length) await this.req.store.addRunRecords(this.runId, records);
  }

  runFailure(e: unknown): void {
    const code =
      e instanceof ProviderError
        ? e.code
        : (e as { kind?: string }).kind === 'user'
          ? 'configuration'
          : 'sync_failed';
    const hint = (e as { hint?: string }).hint;
    this.errors.add(code, errorMessage(e) + (hint ? ` (${hint})` : ''), undefined, 'run', 0);
  }

  status(): SyncRun['status'] {
    if (this.c.failed === 0) return 'success';
    return this.c.succeeded === 0 ? 'failed' : 'partial_success';
  }

  extractCounts(): SyncRun['extract'] {
    return { total: this.c.total, added: this.c.added, updated: this.c.updated, deleted: this.c.deleted };
  }

  loadCounts(): SyncRun['load'] {
    return {
      attempted: this.c.attempted,
      succeeded: this.c.succeeded,
      failed: this.c.failed,
      added: { ...this.c.byChange.added },
      updated: { ...this.c.byChange.updated },
      deleted: { ...this.c.byChange.deleted },
    };
  }
}
