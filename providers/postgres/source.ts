import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Column, DescribeRequest, RawRows, Row, SourceCapability, StreamRequest } from '../sdk.js';
import {
  acquire,
  lostConnection,
  type PostgresSettings,
  toProviderError,
  typeParsers,
} from './connection.js';
import { CopyTextRows, LineSplitter, RowShape, TextValueRows } from './copy-out.js';

/**
 * Reads a model: `describe` prepares the query and asks for its row description (nothing runs,
 * errors point into the model's own text). `stream` reads it through a server-side cursor
 * (DECLARE … CURSOR, then FETCH `batchSize` rows per round trip), the next batch already requested
 * while the caller works on the current one, so memory holds at most two batches. Each FETCH is a
 * statement of its own, so statement_timeout bounds each fetch (the first one runs the query up to
 * its first rows), not the whole sync: a protocol-level portal (pg-cursor) would be one statement
 * until the last row and a long sync would hit the timeout however fast the query is.
 *
 * `streamRaw` returns the same rows as fingerprinted text batches (RawRows), decoded only on demand,
 * for a sync that skips the rows whose text has not changed. It has two paths:
 *
 * - No statement_timeout configured: describe the query (column names and types), then
 *   `COPY (model) TO STDOUT` in text format, read with backpressure and cut into batches of
 *   `batchSize` lines. This is the cheapest way out of PostgreSQL (rows are only framed, never
 *   parsed into fields and objects up front; no round trip per batch) and each row arrives as one
 *   line of text, hashed where it lies. COPY is one statement from the first row to the last, so it
 *   is not used when a statement_timeout is set: that would bound the whole sync, not each read (a
 *   timeout set on the server, database or role still applies to the whole COPY).
 * - statement_timeout configured: the cursor of `stream`, with every value fetched as text (rowMode
 *   array, parsers replaced by the identity) and fingerprinted from the line COPY would have sent for
 *   it, so both paths give a row the same fingerprint. Slower (every value is a JS string, and each
 *   row's line is rebuilt and encoded to be hashed), but each FETCH stays bounded by the timeout.
 *
 * Either way a value is decoded by the connection's own parsers from the text the server wrote, so
 * `row(i)` is what `stream` returns. A COPY that the caller abandons (stops early, aborts) leaves its
 * connection mid-protocol: that connection is destroyed instead of returned to the pool.
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
      const fields = await client.query(new StatementDescription(modelText(req.sql))).done;
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

  stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    return this.#cursor(req, (client, sql) => client.query<Record<string, unknown>>(sql).then((r) => r.rows));
  }

  streamRaw(req: StreamRequest): AsyncIterable<RawRows> {
    if (this.settings.statementTimeoutMs !== undefined) {
      let shape: RowShape | undefined;
      return this.#cursor(req, (client, text) =>
        client.query<(string | null)[]>({ text, rowMode: 'array', types: TEXT_VALUES }).then((r) => {
          shape ??= new RowShape(r.fields, typeParsers);
          return new TextValueRows(shape, r.rows);
        }),
      );
    }
    return this.#copy(req);
  }

  /**
   * DECLARE a cursor for the model, then FETCH `batchSize` rows at a time through `read`, one FETCH
   * ahead. A batch shorter than `batchSize` (or empty) is the last.
   */
  async *#cursor<B extends { readonly length: number }>(
    req: StreamRequest,
    read: (client: pg.PoolClient, sql: string) => Promise<B>,
  ): AsyncIterable<B> {
    const size = batchSize(req);
    req.signal?.throwIfAborted();
    const client = await acquire(this.pool, this.settings);
    const fetch = () => readAhead(read(client, `FETCH FORWARD ${size} FROM backflow_model`));
    let pending: Promise<B> | undefined;
    let broken: unknown;
    let done = false;
    try {
      await client.query('BEGIN');
      // A trailing `--` comment must not swallow anything: the model's text ends on its own line.
      await client.query(`DECLARE backflow_model NO SCROLL CURSOR FOR\n${modelText(req.sql)}\n`);
      let next: Promise<B> | undefined = fetch();
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

  /**
   * Describe the model (names and types of its columns), then `COPY (model) TO STDOUT`, cut into
   * batches of `batchSize` lines. The stream is read only as fast as the caller takes batches (at most
   * COPY_READ_AHEAD bytes wait in it, then the socket and the server stop).
   */
  async *#copy(req: StreamRequest): AsyncIterable<RawRows> {
    const size = batchSize(req);
    req.signal?.throwIfAborted();
    const client = await acquire(this.pool, this.settings);
    const sql = modelText(req.sql);
    // True from the COPY's start until its data ended or it failed: meanwhile the connection is in
    // the middle of the COPY protocol and cannot serve anyone else.
    let copying = false;
    let broken: unknown;
    try {
      const fields = await abortable(client.query(new StatementDescription(sql)).done, req.signal);
      const shape = new RowShape(fields, typeParsers);
      const copy = client.query(copyTo(`COPY (\n${sql}\n) TO STDOUT`, { highWaterMark: COPY_READ_AHEAD }));
      copying = true;
      // Errors reach the loop through the iterator; this listener also catches one raised after the
      // loop let go (the connection destroyed under an abandoned COPY).
      copy.on('error', () => {
        copying = false;
      });
      copy.once('end', () => {
        copying = false;
      });
      const chunks: AsyncIterator<Buffer> = copy[Symbol.asyncIterator]();
      const lines = new LineSplitter(size);
      for (;;) {
        const next = await abortable(chunks.next(), req.signal);
        if (next.done) break;
        for (const batch of lines.push(next.value)) {
          // One chunk may complete several batches: stop between them too once aborted.
          req.signal?.throwIfAborted();
          yield new CopyTextRows(shape, batch.bytes, batch.ends, batch.count);
        }
      }
      const last = lines.end();
      if (last) yield new CopyTextRows(shape, last.bytes, last.ends, last.count);
    } catch (e) {
      broken = e;
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      // A COPY still sending (the caller stopped early or aborted) would keep the connection busy until
      // its last row: destroy the connection rather than wait.
      const aborted = req.signal?.aborted === true;
      client.release(aborted || copying || lostConnection(broken));
    }
  }
}

/** Bytes of COPY data read ahead of the caller (then the socket, and so the server, wait). */
const COPY_READ_AHEAD = 256 * 1024;

/** Per-query parsers for the raw cursor path: every value stays the text the server sent. */
const TEXT_VALUES: pg.CustomTypesConfig = {
  getTypeParser: (() => (text: string) => text) as unknown as pg.CustomTypesConfig['getTypeParser'],
};

function batchSize(req: StreamRequest): number {
  return Math.max(1, Math.floor(req.batchSize));
}

/** The model's SQL without a trailing `;` or whitespace, to embed in DECLARE or COPY. */
function modelText(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

/** A FETCH sent now; its result is awaited later (or deliberately dropped when the stream is abandoned). */
function readAhead<T>(p: Promise<T>): Promise<T> {
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
