import type { Provider, ProviderManifest, ProviderType } from './sdk.js';

/**
 * Dispatch once: `type` → provider, imported lazily (the Oracle and BigQuery clients are heavy).
 * Manifests are static so validation and plan need no driver.
 */
type Loader = () => Promise<Provider>;

const loaders: Record<ProviderType, Loader> = {
  sqlite: async () => (await import('./sqlite/index.js')).provider,
  postgres: async () => (await import('./postgres/index.js')).provider,
  mysql: async () => (await import('./mysql/index.js')).provider,
  mssql: async () => (await import('./mssql/index.js')).provider,
  oracle: async () => (await import('./oracle/index.js')).provider,
  bigquery: async () => (await import('./bigquery/index.js')).provider,
  clickhouse: async () => (await import('./clickhouse/index.js')).provider,
  webhook: async () => (await import('./webhook/index.js')).provider,
  file: async () => (await import('./file/index.js')).provider,
};

export { manifests } from './manifests.js';

export async function loadProvider(type: ProviderType): Promise<Provider> {
  const load = loaders[type];
  if (!load) throw new Error(`unknown provider type ${type}`);
  return load();
}

export type { ProviderManifest };
