import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { UserError } from '../errors.js';

/** Who holds a short-lived file lock. */
interface FileLockInfo {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly created: string;
}

export interface FileLockRequest {
  readonly path: string;
  /** Give up after this long (the holder only reads and writes one small file). */
  readonly timeoutMs?: number;
  /** A lock older than this is left over by a crashed process and is taken over. */
  readonly staleMs?: number;
}

/**
 * Runs `work` holding a lock file created with O_EXCL, retrying with jitter while another process
 * holds it. Unlike the state's apply lock it is held for milliseconds, so contention waits instead
 * of failing; a lock whose holder died (same host, pid gone) or that is older than `staleMs` is
 * taken over.
 */
export async function withFileLock<T>(req: FileLockRequest, work: () => Promise<T>): Promise<T> {
  const timeoutMs = req.timeoutMs ?? 10_000;
  const staleMs = req.staleMs ?? 30_000;
  const info: FileLockInfo = {
    id: randomUUID(),
    pid: process.pid,
    host: hostname(),
    created: new Date().toISOString(),
  };
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(req.path, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(info));
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readHolder(req.path);
    if (holder && (await isStale(req.path, holder, staleMs))) {
      await takeOver(req.path, holder);
      continue;
    }
    if (Date.now() > deadline)
      throw new UserError(
        `${req.path} is still held by ${holder ? `pid ${holder.pid} on ${holder.host} since ${holder.created}` : 'another process'} after ${timeoutMs} ms`,
        { hint: 'if no backflow process is running, delete that file' },
      );
    await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
  }
  try {
    return await work();
  } finally {
    const current = await readHolder(req.path);
    if (current?.id === info.id) await unlink(req.path).catch(() => undefined);
  }
}

async function readHolder(path: string): Promise<FileLockInfo | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as FileLockInfo;
  } catch {
    // Gone, or being written this instant (created but empty): treat as held, unknown holder.
    return null;
  }
}

async function isStale(path: string, holder: FileLockInfo, staleMs: number): Promise<boolean> {
  if (holder.host === hostname() && !alive(holder.pid)) return true;
  try {
    return Date.now() - (await stat(path)).mtimeMs > staleMs;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves the stale lock aside, then checks it moved the lock it judged: if a live process replaced it
 * in between, that lock is put back (link fails rather than overwrite a newer one).
 */
async function takeOver(path: string, stale: FileLockInfo): Promise<void> {
  const aside = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.stale`;
  try {
    await rename(path, aside);
  } catch {
    return; // someone else took it over or released it first
  }
  const moved = await readHolder(aside);
  if (moved?.id !== stale.id) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
