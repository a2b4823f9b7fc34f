import { spawn } from 'node:child_process';
import type { SyncRun } from '../engine/sync/types.js';

export interface ChildSync {
  readonly run: SyncRun;
  readonly ms: number;
  readonly maxRssMb: number;
}

/** Runs `dist/bench/<script>` with args in a child process and parses its one-line JSON answer. */
export function runChild(script: string, args: readonly string[]): Promise<ChildSync> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...profileArgs(), new URL(script, import.meta.url).pathname, ...args],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${script} exited ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildSync);
    });
  });
}
/** BENCH_CPU_PROF=DIR: each child writes a V8 CPU profile there (open in Chrome DevTools or speedscope). */
export function profileArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}
