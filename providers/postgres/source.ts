import type pg from 'pg';
import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { acquire, Cursor, type PostgresSettings, toProviderError } from './connection.js';

/**
 * Reads a model: `describe` prepares the query and asks for its row description (nothing runs,
 * errors point into the model's own text), `stream` reads it
 * through a server-side cursor, `batchSize` rows per round trip, the next batch already requested
 * while the caller works on the current one. Memory holds at most two batches.
 */
export class PostgresSource implements SourceCapability {
  constructor(
    private readonly pool: pg.Pool,
    private readonly settings: PostgresSettings,
  ) {}

  async describe(req: DescribeRequest): Promise<readonly Column[]> {
    req.signal?.throwIfAborted();
    const client = await acquire(this.pool, this.settings);
    let broken: unknown;
    try {
      const fields = await client.query(new StatementDescription(req.sql.replace(/[\s;]+$/, ''))).done;
      const oids = [...new Set(fields.map((f) => f.dataTypeID))];
      const names = await client.query<{ oid: number; name: string }>(
        'SELECT oid::int AS oid, format_type(oid, NULL) AS name FROM pg_type WHERE oid = ANY($1::oid[])',
        [oids],
      );
      const byOid = new Map(names.rows.map((r) => [r.oid, r.name.toLowerCase()]));
      return fields.map((f) => ({ name: f.name, type: byOid.get(f.dataTypeID) ?? `oid ${f.dataTypeID}` }));
    } catch (e) {
      broken = e;
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      client.release(lostConnection(broken));
    }
  }

  async *stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    const size = Math.max(1, Math.floor(req.batchSize));
    req.signal?.throwIfAborted();
    const client = await acquire(this.pool, this.settings);
    const cursor = client.query(new Cursor(req.sql));
    let pending: Promise<Record<string, unknown>[]> | undefined;
    let broken: unknown;
    try {
      let next: Promise<Record<string, unknown>[]> | undefined = readAhead(cursor, size);
      while (next) {
        pending = next;
        const rows = await abortable(next, req.signal);
        pending = next = undefined;
        if (rows.length === 0) break;
        // Ask for the next batch before handing this one over: the server and the socket work
        // while the caller diffs and loads. A short batch was the last one.
        if (rows.length === size) pending = next = readAhead(cursor, size);
        yield rows;
      }
    } catch (e) {
      broken = e;
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      // An abandoned stream (abort, the caller stopped early) still has a read in flight: let it land
      // before closing the portal, or the connection is destroyed rather than reused.
      if (pending && !req.signal?.aborted) await pending.catch(() => undefined);
      if (broken === undefined && !req.signal?.aborted)
        await cursor.close().catch((e: unknown) => (broken = e));
      client.release(broken !== undefined || req.signal?.aborted === true ? true : undefined);
    }
  }
}

function readAhead(cursor: InstanceType<typeof Cursor>, size: number): Promise<Record<string, unknown>[]> {
  const p = cursor.read(size);
  p.catch(() => undefined); // observed later (or deliberately dropped when the stream is abandoned)
  return p;
}

/** Rejects as soon as `signal` aborts, without waiting for the read. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** `release(true)` destroys a client whose connection failed instead of returning it to the pool. */
export function lostConnection(e: unknown): true | undefined {
  if (e === undefined) return undefined;
  const code = (e as { code?: unknown }).code;
  // A server error leaves the connection usable unless it is a connection-class error.
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57P)/.test(code)) return undefined;
  return true;
}

/**
 * Parse + Describe of an unnamed prepared statement, then Sync: the server analyses the query and
 * answers with its columns without executing it (the extended protocol's describe, which pg does
 * not expose on its own).
 */
class StatementDescription implements pg.Submittable {
  readonly done: Promise<readonly pg.FieldDef[]>;
  #fields: readonly pg.FieldDef[] = [];
  #resolve!: (fields: readonly pg.FieldDef[]) => void;
  #reject!: (e: unknown) => void;

  constructor(private readonly text: string) {
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  submit(connection: pg.Connection): void {
    connection.parse({ name: '', text: this.text, types: [] }, true);
    connection.describe({ type: 'S', name: '' }, true);
    connection.sync();
  }

  handleRowDescription(msg: { fields: pg.FieldDef[] }): void {
    this.#fields = msg.fields;
  }

  handleReadyForQuery(): void {
    this.#resolve(this.#fields);
  }

  handleError(e: unknown): void {
    this.#reject(e);
  }

  // Not sent for a describe; present because the client may call them on any active query.
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handlePortalSuspended(): void {}
  handleEmptyQuery(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}
