import type pg from 'pg';
import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { acquire, lostConnection, type PostgresSettings, toProviderError } from './connection.js';

/**
 * Reads a model: `describe` prepares the query and asks for its row description (nothing runs,
 * errors point into the model's own text). `stream` reads it through a server-side cursor
 * (DECLARE … CURSOR, then FETCH `batchSize` rows per round trip), the next batch already requested
 * while the caller works on the current one, so memory holds at most two batches. Each FETCH is a
 * statement of its own, so statement_timeout bounds each fetch (the first one runs the query up to
 * its first rows), not the whole sync: a protocol-level portal (pg-cursor) would be one statement
 * until the last row and a long sync would hit the timeout however fast the query is.
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
    const fetch = () => readAhead(client, `FETCH FORWARD ${size} FROM backflow_model`);
    let pending: Promise<Record<string, unknown>[]> | undefined;
    let broken: unknown;
    let done = false;
    try {
      await client.query('BEGIN');
      // A trailing `--` comment must not swallow anything: the model's text ends on its own line.
      await client.query(`DECLARE backflow_model NO SCROLL CURSOR FOR\n${req.sql.replace(/[\s;]+$/, '')}\n`);
      let next: Promise<Record<string, unknown>[]> | undefined = fetch();
      while (next) {
        pending = next;
        const rows = await abortable(next, req.signal);
        pending = next = undefined;
        if (rows.length === 0) break;
        // Ask for the next batch before handing this one over: the server and the socket work
        // while the caller diffs and loads. A short batch was the last one.
        if (rows.length === size) pending = next = fetch();
        yield rows;
      }
      done = true;
    } catch (e) {
      broken = e;
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      // An abandoned stream (abort, the caller stopped early) may still have a fetch in flight: let it
      // land, then end the transaction (which closes the cursor) so the connection can be reused.
      const aborted = req.signal?.aborted === true;
      if (pending && !aborted) await pending.catch(() => undefined);
      if (!aborted && lostConnection(broken) === undefined)
        await client.query(done ? 'COMMIT' : 'ROLLBACK').catch((e: unknown) => (broken ??= e));
      client.release(aborted || lostConnection(broken));
    }
  }
}

/** Sends a FETCH now; its result is awaited later (or deliberately dropped when the stream is abandoned). */
function readAhead(client: pg.PoolClient, sql: string): Promise<Record<string, unknown>[]> {
  const p = client.query<Record<string, unknown>>(sql).then((r) => r.rows);
  p.catch(() => undefined);
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
