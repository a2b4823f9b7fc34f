import { createInterface } from 'node:readline/promises';
import { type Diagnostic, formatDiagnostic } from '../engine/diagnostics.js';
import { BackflowError } from '../engine/errors.js';
import { type Style, styleFor } from './render/style.js';

/** Where a command writes; tests and the ink UI swap it. */
export interface IO {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly err: NodeJS.WritableStream & { isTTY?: boolean };
  readonly interactive: boolean;
  readonly style: Style;
  readonly errStyle: Style;
}

export function processIO(opts: { color?: boolean } = {}): IO {
  const noColor = opts.color === false;
  return {
    out: process.stdout,
    err: process.stderr,
    interactive: !!process.stdin.isTTY && !!process.stdout.isTTY,
    style: styleFor(process.stdout, noColor),
    errStyle: styleFor(process.stderr, noColor),
  };
}

export function print(io: IO, text: string): void {
  io.out.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(io: IO, value: unknown): void {
  io.out.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printDiagnostics(io: IO, diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) {
    const line = formatDiagnostic(d);
    io.err.write(
      `${d.severity === 'error' ? line.replace(': error:', `: ${io.errStyle.red('error')}:`) : line.replace(': warning:', `: ${io.errStyle.yellow('warning')}:`)}\n`,
    );
  }
}

/** Prints an error the way the person who must act needs it; returns the exit code. */
export function reportError(io: IO, e: unknown): number {
  if (e instanceof BackflowError) {
    io.err.write(`${io.errStyle.red('Error:')} ${e.message}\n`);
    if (e.hint) io.err.write(`  ${e.hint}\n`);
    if (e.kind === 'bug')
      io.err.write(`  this is a bug in backflow; please report it with this output\n${e.stack ?? ''}\n`);
    if (process.env.BACKFLOW_DEBUG && e.cause)
      io.err.write(`  cause: ${String((e.cause as Error)?.stack ?? e.cause)}\n`);
    return 1;
  }
  const err = e as Error;
  io.err.write(`${io.errStyle.red('Error:')} ${err?.message ?? String(e)}\n`);
  if (process.env.BACKFLOW_DEBUG) io.err.write(`${err?.stack ?? ''}\n`);
  return 1;
}

/** Asks a yes/no question on a terminal; only `yes` approves (Terraform's convention). */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(
      `${question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: `,
    );
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}

/**
 * Runs `fn` with an AbortSignal that Ctrl-C / SIGTERM trips: the work stops at its next check and
 * records what it had done (a sync is recorded as failed, a segment batch cut short runs again).
 */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
