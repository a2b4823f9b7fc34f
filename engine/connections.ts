import { loadProvider } from '../providers/registry.js';
import type {
  ConnectionSettings,
  DestinationCapability,
  ProviderType,
  Session,
  SourceCapability,
} from '../providers/sdk.js';
import { resolveDeep } from './config/env.js';
import { loadDocument } from './config/load.js';
import { appliedUnredacted } from './config/normalize.js';
import { parseAddress } from './config/sections.js';
import type { BackflowConfig } from './config/types.gen.js';
import { ProviderError, UserError } from './errors.js';
import type { ResourceState } from './plan/types.js';

export interface OpenSessionRequest {
  /** The resource holding the connection (`source.warehouse`, `destination.crm`, `connector.crm_mysql`). */
  readonly resource: Pick<ResourceState, 'address' | 'body' | 'sensitive_digest'>;
  readonly configDir: string;
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Opens a provider session for a resource: `${env:NAME}` references are resolved here and only here.
 * A body redacted in state (inline password) takes the value from the config files when it is the
 * one that was applied (same digest).
 */
export async function openSession(req: OpenSessionRequest): Promise<Session> {
  const body = req.resource.sensitive_digest ? await unredacted(req) : req.resource.body;
  const settings = resolveDeep(body, req.resource.address, req.env) as unknown as ConnectionSettings;
  const provider = await loadProvider(settings.type as ProviderType);
  return provider.open({
    settings,
    configDir: req.configDir,
    address: req.resource.address,
    ...(req.signal ? { signal: req.signal } : {}),
  });
}

async function unredacted(req: OpenSessionRequest): Promise<Readonly<Record<string, unknown>>> {
  const parsed = parseAddress(req.resource.address);
  const loaded = await loadDocument(req.configDir);
  const body =
    parsed && req.resource.sensitive_digest
      ? appliedUnredacted(loaded.data as BackflowConfig, {
          ...parsed,
          sensitive_digest: req.resource.sensitive_digest,
        })
      : undefined;
  if (body) return body;
  throw new UserError(
    `${req.resource.address} holds an inline password, which state keeps only redacted, and the config files in ${req.configDir} no longer hold the applied value`,
    { hint: 'move the password into ${env:NAME} and run `backflow apply`' },
  );
}

/** Closes a session, ignoring errors from an already broken connection. */
export async function closeQuietly(session: Session | undefined): Promise<void> {
  if (!session) return;
  try {
    await session.close();
  } catch {
    // the connection is already gone; nothing to release
  }
}

/** The session's source side, or an error naming the resource whose type cannot be read. */
export function sourceOf(session: Session, address: string): SourceCapability {
  if (session.source) return session.source;
  throw new ProviderError(`${address} cannot be read as a source`, {
    code: 'not_a_source',
    retryable: false,
    hint: 'point the model at a source whose type can run queries (sqlite, postgres, mysql, …)',
  });
}

/** The session's destination side, or an error naming the resource whose type cannot be loaded. */
export function destinationOf(session: Session, address: string): DestinationCapability {
  if (session.destination) return session.destination;
  throw new ProviderError(`${address} cannot be loaded`, {
    code: 'not_a_destination',
    retryable: false,
    hint: 'point the mapping at a destination type that loads records (a database, webhook or file)',
  });
}
