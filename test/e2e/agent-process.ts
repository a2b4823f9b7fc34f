/**
 * `backflow agent` as a child process of the test (the built CLI: `npm run build` first), with its
 * JSON log lines parsed as they arrive.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { root } from './cli.js';

export type LogLine = { event: string; level: string; message: string; time: string } & Record<
  string,
  unknown
>;

export class AgentProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly listeners = new Set<(l: LogLine) => void>();

  constructor(opts: { dir: string; args?: readonly string[]; env?: NodeJS.ProcessEnv }) {
    this.child = spawn(
      process.execPath,
      [join(root, 'dist', 'cli', 'main.js'), '--dir', opts.dir, 'agent', ...(opts.args ?? [])],
      {
        cwd: opts.dir,
        env: { ...process.env, NO_COLOR: '1', ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          throw new Error(`the agent wrote a line that is not JSON: ${text}`);
        }
        this.lines.push(line);
        for (const l of [...this.listeners]) l(line);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Calls `listener` with every line from now on; returns the function that stops it. */
  onLine(listener: (l: LogLine) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    return waitAny([this], pred, timeoutMs).then((hit) => hit.line);
  }

  describe(): string {
    return `agent ${this.pid}\n--- log ---\n${this.lines
      .slice(-15)
      .map((l) => `${l.time} ${l.event}: ${l.message}`)
      .join('\n')}\n--- stderr ---\n${this.stderr}`;
  }

  /** The HTTP base URL, once the agent has started. */
  async base(timeoutMs = 60_000): Promise<string> {
    const started = await this.waitFor((l) => l.event === 'agent_started', timeoutMs);
    return `http://${String(started.listen)}`;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Runs (by run id) this agent started. */
  startedRuns(mapping?: string): string[] {
    return this.lines
      .filter((l) => l.event === 'run_started' && (!mapping || l.mapping === mapping))
      .map((l) => String(l.run_id));
  }
}

/** The first line matching `pred` from any of `agents` (seen already or to come); nothing dangles after. */
export function waitAny(
  agents: readonly AgentProcess[],
  pred: (l: LogLine) => boolean,
  timeoutMs = 30_000,
): Promise<{ agent: AgentProcess; line: LogLine }> {
  for (const agent of agents) {
    const line = agent.lines.find(pred);
    if (line) return Promise.resolve({ agent, line });
  }
  return new Promise((resolve, reject) => {
    const offs: (() => void)[] = [];
    const done = () => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new Error(`no matching log line in ${timeoutMs} ms\n${agents.map((a) => a.describe()).join('\n')}`),
      );
    }, timeoutMs);
    for (const agent of agents)
      offs.push(
        agent.onLine((line) => {
          if (!pred(line)) return;
          done();
          resolve({ agent, line });
        }),
      );
  });
}
