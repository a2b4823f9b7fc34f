import { randomUUID } from 'node:crypto';
import { access, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, relative } from 'node:path';
import { LockHeldError, UserError } from '../errors.js';
import {
  type LockHandle,
  type LockInfo,
  STATE_VERSION,
  type StateBackend,
  type StateDocument,
} from './types.js';

/**
 * State in a JSON file, written atomically (temp file, fsync, rename) and guarded by a lock file
 * created with O_EXCL, so a second apply fails at once naming the holder.
 */
export class LocalStateBackend implements StateBackend {
  readonly description: string;
  private readonly lockPath: string;

  constructor(
    private readonly path: string,
    cwd = process.cwd(),
  ) {
    this.description = `local state ${relative(cwd, path) || path}`;
    this.lockPath = `${path}.lock`;
  }

  async read(): Promise<StateDocument | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new UserError(`cannot read ${this.description}: ${(e as Error).message}`, { cause: e });
    }
    return parseState(text, this.description);
  }

  async lock(req: { operation: string; who?: string }): Promise<LockHandle> {
    await mkdir(dirname(this.path), { recursive: true });
    const info: LockInfo = {
      id: randomUUID(),
      who: req.who ?? `${process.env.USER ?? 'unknown'}@${hostname()} (pid ${process.pid})`,
      operation: req.operation,
      created: new Date().toISOString(),
    };
    try {
      const fh = await open(this.lockPath, 'wx');
      await fh.writeFile(`${JSON.stringify(info, null, 2)}\n`);
      await fh.sync();
      await fh.close();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = await this.currentLock();
      throw new LockHeldError(
        holder ?? { id: 'unknown', who: 'unknown', operation: 'unknown', created: 'unknown' },
        this.description,
      );
    }
    return {
      info,
      release: async () => {
        const current = await this.currentLock();
        if (current?.id === info.id) await unlink(this.lockPath).catch(() => undefined);
      },
    };
  }

  async write(doc: StateDocument, lock: LockHandle): Promise<void> {
    const current = await this.currentLock();
    if (current?.id !== lock.info.id)
      throw new UserError(`the lock on ${this.description} was lost before writing`, {
        hint: 'someone ran `backflow state unlock` meanwhile; run the command again',
      });
    await writeJsonAtomically(this.path, doc, 0o600);
  }

  async currentLock(): Promise<LockInfo | null> {
    try {
      return JSON.parse(await readFile(this.lockPath, 'utf8')) as LockInfo;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      return { id: 'unreadable', who: 'unknown', operation: 'unknown', created: 'unknown' };
    }
  }

  async forceUnlock(id: string): Promise<void> {
    const current = await this.currentLock();
    if (!current) throw new UserError(`${this.description} is not locked`);
    if (current.id !== id && current.id !== 'unreadable')
      throw new UserError(`lock ID ${id} does not match the current lock ${current.id}`, {
        hint: `the lock is held by ${current.who} (${current.operation}) since ${current.created}`,
      });
    await unlink(this.lockPath);
  }

  async close(): Promise<void> {}
}

/** Parses and checks a state document; never guesses at a corrupt one. */
export function parseState(text: string, where: string): StateDocument {
  let doc: StateDocument;
  try {
    doc = JSON.parse(text) as StateDocument;
  } catch (e) {
    throw new UserError(`${where} is corrupt: ${(e as Error).message}`, {
      hint: 'restore it from a backup or version control; backflow will not overwrite it',
    });
  }
  if (!doc || typeof doc !== 'object' || typeof doc.version !== 'number')
    throw new UserError(`${where} is not a backflow state file`, {
      hint: 'restore it from a backup; backflow will not overwrite it',
    });
  if (doc.version !== STATE_VERSION)
    throw new UserError(
      `${where} has version ${doc.version}, which this backflow does not know (expected ${STATE_VERSION})`,
      {
        hint: 'upgrade backflow; the file is left untouched',
      },
    );
  if (typeof doc.serial !== 'number' || typeof doc.lineage !== 'string' || !Array.isArray(doc.resources))
    throw new UserError(`${where} is corrupt: serial, lineage or resources missing`, {
      hint: 'restore it from a backup; backflow will not overwrite it',
    });
  return { ...doc, pending_effects: doc.pending_effects ?? [] };
}

/**
 * Writes `doc` as indented JSON to `path` so that a reader sees the old file or the new one, never
 * half of one, and a crash right after leaves the new one (writeFileAtomically).
 */
export async function writeJsonAtomically(path: string, doc: unknown, mode: number): Promise<void> {
  await writeFileAtomically(path, `${JSON.stringify(doc, null, 2)}\n`, { mode });
}

/**
 * Writes `text` to `path` whole or not at all: a temp file beside it, fsync, rename, fsync the
 * folder. A failed write leaves no temp file. With `exclusive`, an existing `path` is refused.
 */
export async function writeFileAtomically(
  path: string,
  text: string,
  opts: { mode?: number; exclusive?: boolean } = {},
): Promise<void> {
  if (
    opts.exclusive &&
    (await access(path).then(
      () => true,
      () => false,
    ))
  )
    throw new UserError(`${path} already exists`, { hint: 'choose another file name' });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'w', opts.mode ?? 0o644);
  try {
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
