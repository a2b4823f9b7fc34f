import { DATABASE_ACTIONS, type ProviderManifest, type ProviderType } from './sdk.js';

/** Static manifests: what each provider type can be and do, without importing its driver. */
export const manifests: Readonly<Record<ProviderType, ProviderManifest>> = {
  sqlite: {
    type: 'sqlite',
    roles: ['source', 'destination', 'connector'],
    actions: DATABASE_ACTIONS,
    dialect: 'sqlite',
  },
  postgres: {
    type: 'postgres',
    roles: ['source', 'destination', 'connector'],
    actions: DATABASE_ACTIONS,
    dialect: 'postgres',
  },
  mysql: {
    type: 'mysql',
    roles: ['source', 'destination', 'connector'],
    actions: DATABASE_ACTIONS,
    dialect: 'mysql',
  },
  mssql: {
    type: 'mssql',
    roles: ['source', 'destination', 'connector'],
    actions: DATABASE_ACTIONS,
    dialect: 'mssql',
  },
  oracle: {
    type: 'oracle',
    roles: ['source', 'destination', 'connector'],
    actions: DATABASE_ACTIONS,
    dialect: 'oracle',
  },
  bigquery: {
    type: 'bigquery',
    roles: ['source', 'destination', 'connector'],
    actions: DATABASE_ACTIONS,
    dialect: 'bigquery',
  },
  clickhouse: {
    type: 'clickhouse',
    roles: ['source', 'destination', 'connector'],
    actions: DATABASE_ACTIONS,
    dialect: 'clickhouse',
  },
  webhook: {
    type: 'webhook',
    roles: ['destination'],
    actions: {
      post: { changes: ['added', 'updated', 'deleted'], defaultSyncOn: ['added', 'updated'], requires: [] },
    },
  },
  file: {
    type: 'file',
    roles: ['destination'],
    actions: { append: { changes: ['added', 'updated', 'deleted'], requires: [] } },
  },
};
