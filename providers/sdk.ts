/**
 * The provider contract: the only module a provider imports from the engine side.
 * A provider is a manifest plus `open()`, which returns a session with an optional
 * source (describe, stream rows), an optional destination (actions, load) and an
 * optional SQL executor (segment connectors). Every method takes one request object.
 */
export type { Diagnostic } from '../engine/diagnostics.js';
export { ProviderError, UserError } from '../engine/errors.js';

/** A row as the driver returned it, with JSON text already decoded where the driver knows it is JSON. */
export type Row = Readonly<Record<string, unknown>>;

export type Change = 'added' | 'updated' | 'deleted';
export type ActionName = 'upsert' | 'insert' | 'update' | 'delete' | 'mirror' | 'post' | 'append';
export type ProviderType =
  | 'sqlite'
  | 'postgres'
  | 'mysql'
  | 'mssql'
  | 'oracle'
  | 'bigquery'
  | 'clickhouse'
  | 'webhook'
  | 'file';

/** A connection's settings with every `${env:NAME}` already resolved (only ever held in memory). */
export interface ConnectionSettings {
  readonly type: ProviderType;
  readonly url?: string;
  readonly path?: string;
  readonly project?: string;
  readonly dataset?: string;
  readonly location?: string;
  readonly credentials?: string;
  readonly statement_timeout?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signing_secret?: string;
  readonly timeout?: string;
}

export interface OpenRequest {
  readonly settings: ConnectionSettings;
  /** Absolute config directory: relative `path`s resolve against it. */
  readonly configDir: string;
  /** Resource address the connection belongs to, for error messages (`source.warehouse`). */
  readonly address: string;
  readonly signal?: AbortSignal;
}

export interface Column {
  readonly name: string;
  /** The database's own type name, lower case (`bigint`, `jsonb`, `text`). */
  readonly type: string;
}

export interface DescribeRequest {
  readonly sql: string;
  readonly signal?: AbortSignal;
}

export interface StreamRequest {
  readonly sql: string;
  /** Rows per yielded batch. */
  readonly batchSize: number;
  readonly signal?: AbortSignal;
}

/**
 * A batch of rows as the source read them, in its own text form, decoded only on demand. Each row's
 * fingerprint is a digest of that text: the sync engine keeps it as the row's content hash, so a row
 * whose text has not changed since the last load is recognised without decoding, mapping or hashing it.
 */
export interface RawRows {
  readonly length: number;
  /**
   * A digest of row `i`'s text (base64url, at least 64 bits). The same row text gives the same
   * fingerprint however the rows were read (a source with two read paths fingerprints both alike).
   */
  fingerprint(i: number): string;
  /** Row `i` with only `columns` decoded (the primary key), valued exactly as `stream` values them. */
  pick(i: number, columns: readonly string[]): Row;
  /** Row `i` fully decoded, exactly as `stream` returns it. */
  row(i: number): Row;
  /** Optional: the rows' text itself, for a destination that loads that very format (see RawText). */
  readonly text?: RawText;
}

/**
 * The text a source read its rows in, column by column. A PostgreSQL source reading with COPY has each
 * value as its type's output text (`format: 'postgres-copy'`): a PostgreSQL destination can COPY that
 * text into a column of the same type without decoding and encoding it again.
 */
export interface RawText {
  /** What the text is: `postgres-copy` (COPY text format; `type` is the column's type OID). */
  readonly format: string;
  readonly columns: readonly { readonly name: string; readonly type: number }[];
  /** Row `i`'s values of `columns` (indexes into `columns`), in that order, as one line ending in `\n`. */
  line(i: number, columns: Int32Array): Uint8Array;
}

/** Reads a model: describe its columns without a full scan, stream its rows in batches. */
export interface SourceCapability {
  describe(req: DescribeRequest): Promise<readonly Column[]>;
  stream(req: StreamRequest): AsyncIterable<readonly Row[]>;
  /** Optional: the same rows as `stream`, as fingerprinted raw batches (see RawRows). */
  streamRaw?(req: StreamRequest): AsyncIterable<RawRows>;
}

/** One record to load. `fields` is null for deleted records (their data is gone from the model). */
export interface LoadRecord {
  readonly change: Change;
  /** The record's primary key as text (a composite key is a JSON array). */
  readonly key: string;
  /** Stable per (mapping, key, content): receivers can de-duplicate retries. */
  readonly idempotencyKey: string;
  readonly fields: Readonly<Record<string, unknown>> | null;
  /**
   * Optional: the names `fields` holds, in its order, known without reading `fields` (a record made
   * from a raw row decodes the row when `fields` is first read). Absent: read `fields`.
   */
  readonly fieldNames?: readonly string[];
  /**
   * Optional: `fields` (these names, in this order) as one line of the source's own text (RawText),
   * when each of them is a model column mapped unchanged and read as text `format` from a column of
   * type `types[k]` (a negative type: the destination cannot take that column's text). Undefined
   * otherwise: the destination then encodes `fields` as usual.
   */
  sourceText?(format: string, fields: readonly string[], types: readonly number[]): Uint8Array | undefined;
}

/** Action options from the mapping (`table`, `key`). */
export interface ActionOptions {
  readonly table?: string;
  readonly key?: string;
}

export interface LoadRequest {
  readonly mapping: string;
  readonly syncId: string;
  readonly action: ActionName;
  readonly options: ActionOptions;
  readonly records: readonly LoadRecord[];
  readonly signal?: AbortSignal;
}

/** Exactly one per record, in order. `retry`: a transient failure; `rejected`: the destination refused it. */
export type RecordResult =
  | { readonly status: 'ok' }
  | { readonly status: 'rejected'; readonly code: string; readonly message: string }
  | { readonly status: 'retry'; readonly code: string; readonly message: string };

export interface CheckRequest {
  readonly action: ActionName;
  readonly options: ActionOptions;
  /** Destination field names the mapping writes. */
  readonly fields: readonly string[];
  readonly signal?: AbortSignal;
}

/** A problem `check` found (table missing, column missing), reported against the mapping. */
export interface CheckProblem {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

/** What an action needs and which changes it can carry. */
export interface ActionSpec {
  /** Changes this action can load; the default `sync_on` too unless `defaultSyncOn` says otherwise. */
  readonly changes: readonly Change[];
  readonly defaultSyncOn?: readonly Change[];
  /** Mapping options that must be set (`table`, `key`). */
  readonly requires: readonly (keyof ActionOptions)[];
  /**
   * Destination fields with a fixed list of properties (the seed's "certain object mapping fields"):
   * field name → allowed property names. Unlisted fields accept anything.
   */
  readonly fixedProperties?: Readonly<Record<string, readonly string[]>>;
}

/** Loads records through an action. */
export interface DestinationCapability {
  /**
   * How many `load` calls the engine may have in flight at once for one run (default 1). Batches of
   * one run never share a key, so a destination whose loads are independent (separate connections,
   * each batch its own transaction) may accept more: the server then works on one batch while the
   * engine prepares the next.
   */
  readonly concurrentLoads?: number;
  /** Checks that the target exists and has the columns the mapping writes, without writing. */
  check?(req: CheckRequest): Promise<readonly CheckProblem[]>;
  load(req: LoadRequest): Promise<readonly RecordResult[]>;
}

export interface ExecuteRequest {
  readonly sql: string;
  readonly signal?: AbortSignal;
}

/** Runs rendered SQL text (segment connectors). One call may hold several statements only where the dialect allows. */
export interface SqlExecutor {
  execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }>;
  /** Runs a query and returns its rows (used by tests and `segments resync` read-backs). */
  query?(req: ExecuteRequest): Promise<readonly Row[]>;
}

export interface Session {
  readonly source?: SourceCapability;
  readonly destination?: DestinationCapability;
  readonly sql?: SqlExecutor;
  close(): Promise<void>;
}

/** Static facts about a provider, readable without opening a connection. */
export interface ProviderManifest {
  readonly type: ProviderType;
  /** What the provider can be: a model source, a mapping destination, a segment connector. */
  readonly roles: readonly ('source' | 'destination' | 'connector')[];
  readonly actions: Readonly<Partial<Record<ActionName, ActionSpec>>>;
  /** SQL dialect name for templates (absent for webhook and file). */
  readonly dialect?: DialectName;
}

export type DialectName = 'sqlite' | 'postgres' | 'mysql' | 'mssql' | 'oracle' | 'bigquery' | 'clickhouse';

export interface Provider {
  readonly manifest: ProviderManifest;
  open(req: OpenRequest): Promise<Session>;
}

/** The standard database actions, shared by every SQL provider's manifest. */
export const DATABASE_ACTIONS: Readonly<Partial<Record<ActionName, ActionSpec>>> = {
  upsert: { changes: ['added', 'updated'], requires: ['table', 'key'] },
  insert: { changes: ['added'], requires: ['table'] },
  update: { changes: ['updated'], requires: ['table', 'key'] },
  delete: { changes: ['deleted'], requires: ['table', 'key'] },
  mirror: { changes: ['added', 'updated', 'deleted'], requires: ['table', 'key'] },
};

/**
 * Sets `row[name]` as an own, enumerable property, `__proto__` included (a plain assignment of that
 * name on a fresh object would set its prototype instead): for rows and fields built from names a
 * model or a mapping chose.
 */
export function setField(row: Record<string, unknown>, name: string, value: unknown): void {
  if (name === '__proto__')
    Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
  else row[name] = value;
}
