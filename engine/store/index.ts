import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { RuntimeStore } from './types.js';

export type { PendingRecord, RunFilter, RuntimeStore, SnapshotEntry } from './types.js';

/** Where the runtime store lives when `settings.store` says nothing. */
export const DEFAULT_STORE_URL = 'sqlite:.backflow/store.db';

export interface OpenStoreRequest {
  /** `sqlite:PATH` (relative to `configDir`; `sqlite::memory:` for a throwaway store) or `postgres://…`. */
  readonly url?: string | undefined;
  /** Absolute config directory. */
  readonly configDir: string;
}

/** Opens the runtime store named by `url` and applies pending migrations. */
export async function openStore(req: OpenStoreRequest): Promise<RuntimeStore> {
  const url = req.url ?? DEFAULT_STORE_URL;
  if (url.startsWith('sqlite:')) {
    const { SqliteStore } = await import('./sqlite.js');
    const file = sqliteFile(url, req.configDir);
    let store: RuntimeStore;
    try {
      store = new SqliteStore(file);
    } catch (e) {
      throw new UserError(`cannot open the runtime store ${file}: ${(e as Error).message}`, {
        hint: 'point `settings.store` at a writable SQLite file (it is created when missing)',
        cause: e,
      });
    }
    try {
      await store.migrate();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { openPostgresStore } = await importPostgres();
    return openPostgresStore({ url, configDir: req.configDir });
  }
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url;
  throw new UserError(`unsupported runtime store URL scheme "${scheme}"`, {
    hint: 'set `settings.store` to `sqlite:PATH` (relative to the config directory) or `postgres://USER@HOST/DB`',
  });
}

/** `sqlite:PATH`, `sqlite://PATH` and `sqlite:///ABS/PATH`: resolves PATH and creates its directory. */
function sqliteFile(url: string, configDir: string): string {
  let path = url.slice('sqlite:'.length);
  if (path.startsWith('//')) path = path.slice(2);
  if (path === ':memory:') return path;
  if (path === '') {
    throw new UserError(`runtime store URL "${url}" names no file`, {
      hint: `use e.g. ${DEFAULT_STORE_URL}`,
    });
  }
  const file = resolve(configDir, path);
  try {
    mkdirSync(dirname(file), { recursive: true });
  } catch (e) {
    throw new UserError(`cannot create the directory of the runtime store ${file}: ${(e as Error).message}`, {
      hint: 'check the permissions, or point `settings.store` somewhere writable',
      cause: e,
    });
  }
  return file;
}

/** Loaded only for `postgres://` URLs, so SQLite users never import `pg`. */
async function importPostgres(): Promise<typeof import('./postgres.js')> {
  try {
    return await import('./postgres.js');
  } catch (e) {
    throw new UserError(`the PostgreSQL runtime store cannot be loaded: ${(e as Error).message}`, {
      hint: 'reinstall backflow, or use the default SQLite store (`settings.store: sqlite:.backflow/store.db`)',
      cause: e,
    });
  }
}
