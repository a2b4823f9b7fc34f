import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { BigQuery, type Job, type Query } from '@google-cloud/bigquery';
import { type ConnectionSettings, ProviderError, type Row, UserError } from '../sdk.js';
import { optionalTimeout } from '../sql/settings.js';

/** A BigQuery connection's settings, checked once when the session opens. */
export interface BigquerySettings {
  readonly project: string;
  readonly dataset: string;
  /** Where jobs run (`US`, `EU`, `europe-west1`); the dataset's location when unset. */
  readonly location?: string;
  /** A service-account key file (absolute), or the key itself when `credentials` held JSON text. */
  readonly keyFilename?: string;
  readonly credentials?: Readonly<Record<string, unknown>>;
  /** `project/dataset`, safe for messages. */
  readonly where: string;
  readonly statementTimeoutMs?: number;
}

const NAME = /^[A-Za-z0-9_.:-]+$/;

/**
 * `project`, `dataset`, `location`, and `credentials`: a key file path relative to the config
 * directory, or the key's JSON text (from `${env:…}`). Without `credentials` the client uses
 * Application Default Credentials.
 */
export function parseBigquerySettings(
  settings: ConnectionSettings,
  configDir: string,
  address: string,
): BigquerySettings {
  const project = settings.project?.trim();
  const dataset = settings.dataset?.trim();
  if (!project || !NAME.test(project))
    throw new UserError(`${address}: a bigquery connection needs \`project\` (the Google Cloud project id)`);
  if (!dataset || !/^\w+$/.test(dataset))
    throw new UserError(
      `${address}: a bigquery connection needs \`dataset\` (letters, digits and underscores)`,
    );
  let keyFilename: string | undefined;
  let credentials: Record<string, unknown> | undefined;
  const given = settings.credentials?.trim();
  if (given?.startsWith('{')) {
    try {
      credentials = JSON.parse(given) as Record<string, unknown>;
    } catch {
      // No cause and no excerpt: the text is a private key.
      throw new UserError(`${address}: \`credentials\` holds text that is not a JSON key`, {
        hint: 'give the path of the service-account key file, or its complete JSON text',
      });
    }
  } else if (given) {
    keyFilename = isAbsolute(given) ? given : resolve(configDir, given);
    if (!existsSync(keyFilename))
      throw new UserError(`${address}: the credentials file ${keyFilename} does not exist`, {
        hint: 'download a service-account key (JSON) and give its path relative to the config directory',
      });
  }
  return {
    project,
    dataset,
    ...(settings.location ? { location: settings.location } : {}),
    ...(keyFilename ? { keyFilename } : {}),
    ...(credentials ? { credentials } : {}),
    where: `${project}/${dataset}`,
    ...optionalTimeout(settings.statement_timeout, address),
  };
}

export function createBigqueryClient(s: BigquerySettings): BigQuery {
  return new BigQuery({
    projectId: s.project,
    ...(s.location ? { location: s.location } : {}),
    ...(s.keyFilename ? { keyFilename: s.keyFilename } : {}),
    ...(s.credentials
      ? { credentials: s.credentials as { client_email?: string; private_key?: string } }
      : {}),
    userAgent: 'backflow',
  });
}

/** Checks that the credentials work and the dataset exists. */
export async function ping(client: BigQuery, s: BigquerySettings): Promise<void> {
  try {
    await client.dataset(s.dataset).getMetadata();
  } catch (e) {
    throw toProviderError(e, s, 'connect');
  }
}

/** Query options every job gets: the dataset as default (unqualified tables resolve there), location, timeout. */
export function jobOptions(s: BigquerySettings, query: string, extra: Partial<Query> = {}): Query {
  return {
    query,
    defaultDataset: { projectId: s.project, datasetId: s.dataset },
    ...(s.location ? { location: s.location } : {}),
    ...(s.statementTimeoutMs !== undefined ? { jobTimeoutMs: s.statementTimeoutMs } : {}),
    ...extra,
  };
}

/** Runs a job to completion (DML, scripts) and returns it; a cancelled signal cancels the job. */
export async function runJob(client: BigQuery, options: Query, signal?: AbortSignal): Promise<Job> {
  signal?.throwIfAborted();
  const [job] = await client.createQueryJob(options);
  const onAbort = () => void job.cancel().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await job.getQueryResults({ maxResults: 0 });
    return job;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// --- values -------------------------------------------------------------------------------

/**
 * A result value as plain data: INT64 (read wrapped, so no digit is lost), NUMERIC, DATE, DATETIME,
 * TIME, TIMESTAMP and GEOGRAPHY as their text; arrays and structs recursively; bytes stay a Buffer.
 */
export function plainValue(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return v.map(plainValue);
  const o = v as Record<string, unknown>;
  // The client's wrappers (BigQueryInt, BigQueryTimestamp, Geography, …) are class instances with a text `value`.
  if (typeof o.value === 'string' && o.constructor?.name !== 'Object') return o.value;
  if (o.constructor?.name === 'Big') return String(v);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = plainValue(x);
  return out;
}

export function plainRow(row: Record<string, unknown>): Row {
  return plainValue(row) as Row;
}

// --- errors ---------------------------------------------------------------------------------

/** The first of a Google API error's reasons (`invalidQuery`, `notFound`, `rateLimitExceeded`). */
export function errorReason(e: unknown): string | undefined {
  const errors = (e as { errors?: unknown }).errors;
  if (Array.isArray(errors)) {
    const reason = (errors[0] as { reason?: unknown } | undefined)?.reason;
    if (typeof reason === 'string') return reason;
  }
  const reason = (e as { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason : undefined;
}

const BUSY_REASONS = new Set([
  'rateLimitExceeded',
  'backendError',
  'internalError',
  'jobRateLimitExceeded',
  'quotaExceeded',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
]);

/** The text of a private key, should a message ever quote one, and URL user info. */
export function redact(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, '***')
    .replace(/(\w+:\/\/)[^/@\s]*@/g, '$1***@');
}

/** A client or job error as a ProviderError saying who must act. */
export function toProviderError(e: unknown, s: BigquerySettings, during: 'connect' | 'query'): ProviderError {
  if (e instanceof ProviderError) return e;
  const where = s.where;
  const message = redact(e instanceof Error ? e.message : String(e));
  const reason = errorReason(e);
  const status = (e as { code?: unknown }).code;
  if (
    status === 401 ||
    reason === 'authError' ||
    /invalid_grant|unauthorized_client|Could not load the default credentials|invalid_client/i.test(message)
  )
    return new ProviderError(`BigQuery ${where}: the credentials were refused: ${message}`, {
      code: 'auth_failed',
      retryable: false,
      hint: 'check the service-account key in `credentials` (is it revoked or for another project?)',
      cause: e,
    });
  if (status === 403 && reason === 'accessDenied')
    return new ProviderError(`BigQuery ${where}: ${message}`, {
      code: 'auth_failed',
      retryable: false,
      hint: 'grant the service account BigQuery Job User on the project and Data Editor on the dataset',
      cause: e,
    });
  if (during === 'connect' && (status === 404 || reason === 'notFound'))
    return new ProviderError(`BigQuery ${where}: ${message}`, {
      code: 'connection_failed',
      retryable: false,
      hint: 'check `project` and `dataset` (and `location` for a dataset outside the US)',
      cause: e,
    });
  if (/timed out|timeout/i.test(message) && reason !== 'invalidQuery')
    return new ProviderError(`BigQuery ${where}: ${message}`, {
      code: 'statement_timeout',
      retryable: true,
      hint: 'the job ran longer than statement_timeout: make it faster or raise statement_timeout',
      cause: e,
    });
  if ((reason && BUSY_REASONS.has(reason)) || /concurrent update|could not serialize access/i.test(message))
    return new ProviderError(`BigQuery ${where}: ${message}`, {
      code: 'server_busy',
      retryable: true,
      cause: e,
    });
  const sys = (e as { code?: unknown }).code;
  if (typeof sys === 'string' && NETWORK_CODES.has(sys))
    return new ProviderError(
      during === 'connect'
        ? `cannot reach BigQuery for ${where}: ${message}`
        : `BigQuery ${where}: the connection was lost: ${message}`,
      {
        code: during === 'connect' ? 'connection_failed' : 'connection_lost',
        retryable: true,
        hint: 'is bigquery.googleapis.com reachable from here (proxy, firewall)?',
        cause: e,
      },
    );
  return new ProviderError(`BigQuery ${where}: ${message}`, {
    code: during === 'connect' ? 'connection_failed' : 'query_failed',
    retryable: false,
    cause: e,
  });
}
