import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { type OpenRequest, ProviderError, UserError } from '../sdk.js';

/** An open SQLite file and how to name it in messages. */
export interface SqliteConnection {
  readonly db: Database;
  /** `source.warehouse (/abs/path/warehouse.db)`: the address and the file, for every message. */
  readonly where: string;
}

/** How long a statement waits for another process's write lock before failing as `busy`. */
const BUSY_TIMEOUT_MS = 10_000;

/**
 * Opens the file at `settings.path` (relative to the config directory). The file must exist:
 * opening a source must not leave an empty database behind a typo, and a destination or
 * connector needs its tables anyway. WAL lets a reader and a writer work at once.
 */
export function openSqlite(req: OpenRequest): SqliteConnection {
  const { address, configDir } = req;
  const path = req.settings.path;
  if (path === undefined || path === '') {
    throw new UserError(`${address}: a sqlite connection needs \`path\``, {
      hint: 'set `path` to the database file, relative to the config directory',
    });
  }
  if (path === ':memory:')
    return { db: configure(new BetterSqlite3(':memory:'), false), where: `${address} (:memory:)` };

  const file = resolve(configDir, path);
  const where = `${address} (${file})`;
  const fix = `fix \`path\` (${JSON.stringify(path)}; a relative path starts at the config directory ${configDir})`;
  const dir = dirname(file);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`${address}: the directory ${dir} of the SQLite file does not exist`, {
      hint: `create the directory and the database, or ${fix}`,
    });
  }
  if (!existsSync(file)) {
    throw new UserError(`${address}: the SQLite file ${file} does not exist`, {
      hint: `create it (for example \`sqlite3 ${file} "VACUUM;"\`), or ${fix}`,
    });
  }
  if (statSync(file).isDirectory()) {
    throw new UserError(`${address}: ${file} is a directory, not a SQLite file`, { hint: fix });
  }
  if (!canAccess(file, constants.R_OK)) {
    throw new UserError(`${address}: the SQLite file ${file} is not readable by this process`, {
      hint: `grant read access (and write access for a destination or connector), or ${fix}`,
    });
  }
  const readonly = !canAccess(file, constants.W_OK) || !canAccess(dir, constants.W_OK);
  let db: Database | undefined;
  try {
    db = new BetterSqlite3(file, { fileMustExist: true, readonly });
    return { db: configure(db, !readonly), where };
  } catch (e) {
    db?.close();
    const message = (e as Error).message;
    if (sqliteCode(e) === 'SQLITE_NOTADB') {
      throw new UserError(`${address}: ${file} is not a SQLite database (${message})`, {
        hint: fix,
        cause: e,
      });
    }
    throw new ProviderError(`${where}: cannot open the SQLite file: ${message}`, {
      code: 'connection_failed',
      retryable: isBusy(e),
      cause: e,
    });
  }
}

function configure(db: Database, writable: boolean): Database {
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // Declared foreign keys are enforced (SQLite leaves that to each connection): a destination
  // write that breaks one is rejected rather than stored.
  db.pragma('foreign_keys = ON');
  // Reading the journal mode also reads the header: a file that is not a database fails here.
  if (writable) db.pragma('journal_mode = WAL');
  else db.pragma('journal_mode');
  return db;
}

function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** SQLite's extended result code (`SQLITE_CONSTRAINT_UNIQUE`), when `e` came from SQLite. */
export function sqliteCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Another connection holds the lock beyond busy_timeout: worth trying again later. */
export function isBusy(e: unknown): boolean {
  const code = sqliteCode(e);
  return code !== undefined && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** A failed statement as a ProviderError carrying SQLite's own message (our own errors pass through). */
export function toProviderError(e: unknown, where: string, what: string): ProviderError | UserError {
  if (e instanceof ProviderError || e instanceof UserError) return e;
  const message = (e as Error)?.message ?? String(e);
  if (isBusy(e)) {
    return new ProviderError(
      `${where}: ${what} failed: the database is locked by another connection (${message})`,
      {
        code: 'busy',
        retryable: true,
        hint: 'another process holds a write lock; the next sync tries again',
        cause: e,
      },
    );
  }
  return new ProviderError(`${where}: ${what} failed: ${message}`, {
    code: 'query_failed',
    retryable: false,
    cause: e,
  });
}
