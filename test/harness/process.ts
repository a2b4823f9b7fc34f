/**
 * Process plumbing shared by the server starters: run a command, find free loopback
 * ports, poll until a server answers, and make sure no server outlives the test process.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Output of a finished command. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One request to `run`. */
export interface RunRequest {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory; give one the target user can enter when running as another user. */
  readonly cwd?: string;
  /** Kill the command after this many milliseconds (default 120 s). */
  readonly timeoutMs?: number;
}

/** Runs a command to completion with stdin closed; rejects on a non-zero exit with its output. */
export async function run(req: RunRequest): Promise<RunResult> {
  const timeoutMs = req.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(req.cmd, req.args, {
      env: req.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${req.cmd}: ${err.message}`, { cause: err }));
    });
    // 'exit', not 'close': a daemon forked by the command (pg_ctl start) may keep the pipes open.
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout, stderr };
      if (code === 0) resolve(result);
      else {
        const how = signal ? `killed by ${signal}` : `exit code ${code}`;
        const output = `${stdout}\n${stderr}`.trim().split('\n').slice(-30).join('\n');
        reject(new Error(`${[req.cmd, ...req.args].join(' ')} failed (${how}):\n${output}`));
      }
    });
  });
}

/** True when this process runs as root (apt-get, runuser and chown are then available). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** A command line that runs `cmd` as `user` when we are root, and as ourselves otherwise. */
export function asUser(user: string, cmd: string, args: readonly string[]): RunRequest {
  return isRoot() ? { cmd: 'runuser', args: ['-u', user, '--', cmd, ...args] } : { cmd, args };
}

/**
 * A fresh directory under os.tmpdir(), owned by `owner` when we are root (the database
 * servers refuse to run as root and need to write there).
 */
export function makeTempDir(prefix: string, owner?: string): string {
  const dir = mkdtempSync(join(tmpdir(), `backflow-${prefix}-`));
  if (owner && isRoot()) {
    const uid = Number(execFileSync('id', ['-u', owner], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', owner], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

/** Removes a directory tree, ignoring errors (used on the way out). */
export function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  } catch {
    // A leftover directory in tmp is not worth failing a test run for.
  }
}

/**
 * `count` distinct free TCP ports on 127.0.0.1. The OS picks them (bind to port 0); all are
 * held open together so they differ, then released for the server to take.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => {
    const addr = srv.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port from listen(0)');
    return addr.port;
  });
  await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  return ports;
}

/** The last `lines` lines of a file, or a note that it cannot be read. */
export function tailFile(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${path}: ${(err as Error).message})`;
  }
}

/** One request to `waitUntilReady`. */
export interface WaitRequest {
  /** Server name for the error message. */
  readonly name: string;
  /** Resolves when the server answers; rejects (any error) while it does not yet. */
  readonly probe: () => Promise<void>;
  /** Give up after this many milliseconds. */
  readonly timeoutMs: number;
  /** Server log files whose tail goes into the error. */
  readonly logs: readonly string[];
  /** The server process, when we own it directly: its exit ends the wait at once. */
  readonly child?: ChildProcess;
}

/** Polls `probe` until it succeeds; on timeout or early exit, throws with the log tails. */
export async function waitUntilReady(req: WaitRequest): Promise<void> {
  const deadline = Date.now() + req.timeoutMs;
  let exited: string | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
    exited = signal ? `killed by ${signal}` : `exited with code ${code}`;
  };
  req.child?.once('exit', onExit);
  let lastError: unknown;
  try {
    for (;;) {
      if (exited) break;
      try {
        await req.probe();
        return;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    req.child?.off('exit', onExit);
  }
  const why = exited ? `the server ${exited}` : `no answer within ${req.timeoutMs / 1000} s`;
  const last = describeError(lastError);
  const tails = req.logs.map((log) => `--- ${log} (tail) ---\n${tailFile(log)}`).join('\n');
  throw new Error(`${req.name} did not start: ${why}; last probe error: ${last}\n${tails}`);
}

// fetch() says only "fetch failed"; the reason (ECONNREFUSED …) is in its cause.
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.message}${cause}`;
}

/** Waits for a process we spawned to exit; sends SIGKILL if it takes longer than `timeoutMs`. */
export async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Waits until no process has `pid` (for daemons we did not spawn, e.g. the postmaster). */
export async function waitForPidGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone between the check and the kill.
  }
}

interface Guarded {
  readonly pid: number;
  readonly signal: NodeJS.Signals;
  readonly dir: string;
  readonly watchdog: ChildProcess;
}

const guarded = new Map<number, Guarded>();
let exitHookInstalled = false;

// Kills what is still registered when this process exits normally (e.g. a failed setup).
function killGuardedOnExit(): void {
  for (const g of guarded.values()) {
    try {
      process.kill(g.pid, g.signal);
    } catch {
      // Already gone.
    }
    removeDir(g.dir);
  }
}

/**
 * Ties a server's life to this process. A normal exit kills it through an 'exit' hook; for
 * a hard death (SIGKILL, OOM) a detached watchdog shell polls this process and, once it is
 * gone, signals the server and removes its directory. Returns the function that releases
 * the guard after a clean stop.
 */
export function guardServer(pid: number, signal: NodeJS.Signals, dir: string): () => void {
  if (!exitHookInstalled) {
    process.on('exit', killGuardedOnExit);
    exitHookInstalled = true;
  }
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'kill -s "$3" "$2" 2>/dev/null || exit 0',
    'for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$2" 2>/dev/null || break; sleep 1; done',
    'kill -s KILL "$2" 2>/dev/null',
    'rm -rf "$4"',
  ].join('\n');
  const watchdog = spawn(
    'sh',
    ['-c', script, 'backflow-watchdog', String(process.pid), String(pid), signal.replace(/^SIG/, ''), dir],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  watchdog.unref();
  guarded.set(pid, { pid, signal, dir, watchdog });
  return () => {
    guarded.delete(pid);
    watchdog.kill('SIGKILL');
  };
}
