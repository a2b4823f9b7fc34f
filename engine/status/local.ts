import { mkdir, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { UserError } from '../errors.js';
import { writeJsonAtomically } from '../state/local.js';
import { emptyStatus, entryOf, parseStatus, withEntry } from './document.js';
import { withFileLock } from './file-lock.js';
import type { EntryKind, EntryUpdate, StatusDocument, StatusEntry, StatusStore } from './types.js';

/**
 * Where the status document of a local state file lives: `status.json` beside `state.json`, or
 * `NAME.status.json` beside any other `NAME.json` (two states in one folder keep two documents).
 */
export function statusPathFor(statePath: string): string {
  const name = basename(statePath);
  if (name === 'state.json') return join(dirname(statePath), 'status.json');
  return join(dirname(statePath), `${name.replace(/\.json$/, '')}.status.json`);
}

/**
 * The status document as a JSON file beside the local state. Writes are atomic (temp file, fsync,
 * rename, fsync of the folder), so a reader never sees half a document. Each update is a
 * read-modify-write of the whole file under its own short-lived lock file (`status.json.lock`,
 * retried while held), never the state's apply lock: syncs of different mappings in different
 * processes serialise for milliseconds and keep each other's entries, and an `apply` in progress
 * neither blocks nor is blocked by them.
 */
export class LocalStatusStore implements StatusStore {
  readonly description: string;
  private readonly lockPath: string;

  constructor(
    private readonly path: string,
    cwd = process.cwd(),
  ) {
    this.description = `status document ${relative(cwd, path) || path}`;
    this.lockPath = `${path}.lock`;
  }

  async read(): Promise<StatusDocument> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyStatus();
      throw new UserError(`cannot read ${this.description}: ${(e as Error).message}`, { cause: e });
    }
    return parseStatus(text, this.description);
  }

  async update<K extends EntryKind>(req: EntryUpdate<K>): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await withFileLock({ path: this.lockPath }, async () => {
      const doc = await this.readForUpdate();
      const value = req.update(entryOf(doc, req.kind, req.name));
      const entry = { kind: req.kind, name: req.name, value } as StatusEntry;
      await this.write(withEntry(doc, entry));
    });
  }

  /** A corrupt document is set aside (`.corrupt`) and rebuilt: every entry is rewritten by the next run. */
  private async readForUpdate(): Promise<StatusDocument> {
    try {
      return await this.read();
    } catch (e) {
      if (!(e instanceof UserError) || !/corrupt|not a backflow/.test(e.message)) throw e;
      await rename(this.path, `${this.path}.corrupt`);
      return emptyStatus();
    }
  }

  private async write(doc: StatusDocument): Promise<void> {
    await writeJsonAtomically(this.path, doc, 0o644);
  }

  async close(): Promise<void> {}
}
