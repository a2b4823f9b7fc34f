import { mkdir, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { encodeJson } from '../json.js';
import {
  type CheckProblem,
  type CheckRequest,
  type DestinationCapability,
  type LoadRequest,
  type RecordResult,
  UserError,
} from '../sdk.js';

/**
 * Action `append`: one JSON line per record (`{"change","key","fields","sync_id"}`) appended to a
 * file. A batch is one append followed by fsync, so a batch reported ok is on disk.
 */
export class FileDestination implements DestinationCapability {
  readonly #path: string;

  /** `path` is absolute (resolved against the config directory by `open`). */
  constructor(path: string) {
    this.#path = path;
  }

  async check(_req: CheckRequest): Promise<readonly CheckProblem[]> {
    const info = await stat(this.#path).catch(() => undefined);
    if (info && !info.isFile()) {
      return [
        {
          code: 'not_a_file',
          message: `${this.#path} exists and is not a regular file`,
          hint: 'choose another path',
        },
      ];
    }
    return [];
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    if (req.action !== 'append') {
      throw new UserError(`file destinations have only the \`append\` action, not \`${req.action}\``);
    }
    req.signal?.throwIfAborted();
    if (req.records.length === 0) return [];
    let text = '';
    for (const r of req.records) {
      text += `${encodeJson({
        change: r.change,
        key: r.key,
        fields: r.change === 'deleted' ? null : r.fields,
        sync_id: req.syncId,
      })}\n`;
    }
    try {
      await this.#append(Buffer.from(text, 'utf8'));
    } catch (e) {
      const message = `cannot append to ${this.#path}: ${e instanceof Error ? e.message : String(e)}`;
      return req.records.map(() => ({ status: 'retry', code: 'file_write_failed', message }));
    }
    return req.records.map(() => ({ status: 'ok' }));
  }

  async #append(data: Buffer): Promise<void> {
    await mkdir(dirname(this.#path), { recursive: true });
    const handle = await open(this.#path, 'a');
    try {
      const { size } = await handle.stat();
      try {
        await handle.writeFile(data);
        await handle.sync();
      } catch (e) {
        // Cut off a partly written batch so a retry does not leave a broken line behind.
        await handle.truncate(size).catch(() => {});
        throw e;
      }
    } finally {
      await handle.close();
    }
  }
}
