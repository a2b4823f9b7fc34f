/**
 * An agent in the test process over real files: a SQLite warehouse, a webhook receiver, the local
 * state backend and a SQLite store; `apply` plans and applies the directory's config like
 * `backflow apply`. Log lines are kept parsed.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { type AgentRequest, type RunningAgent, startAgent } from '../../engine/agent/agent.js';
import { readConfig } from '../../engine/config/index.js';
import type { BackflowConfig } from '../../engine/config/types.gen.js';
import { applyPlan } from '../../engine/plan/apply.js';
import { plan } from '../../engine/plan/plan.js';
import { LocalStateBackend } from '../../engine/state/local.js';
import type { StateDocument } from '../../engine/state/types.js';
import { WebhookReceiver } from '../harness/webhook-receiver.js';

export type LogLine = { event: string; level: string; message: string } & Record<string, unknown>;

export interface StartedAgent {
  readonly agent: RunningAgent;
  readonly base: string;
  readonly lines: LogLine[];
  /** Waits for a log line matching `pred` (already written or to come). */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** fetch against the agent, with the JSON body parsed. */
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are JSON the tests' assertions check
  call(path: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }>;
}

export class AgentFixture {
  private constructor(
    readonly dir: string,
    readonly receiver: WebhookReceiver,
    readonly wh: Database.Database,
  ) {}

  /** `config` may use `${RECEIVER}` for the webhook URL; `rows` people are seeded. */
  static async create(config: string, rows: number): Promise<AgentFixture> {
    const dir = await mkdtemp(join(tmpdir(), 'backflow-agent-'));
    const receiver = await WebhookReceiver.start();
    const wh = new Database(join(dir, 'wh.db'));
    wh.exec('create table people (id integer primary key, name text)');
    const insert = wh.prepare('insert into people values (?, ?)');
    wh.transaction(() => {
      for (let i = 1; i <= rows; i++) insert.run(i, `person ${i}`);
    })();
    const f = new AgentFixture(dir, receiver, wh);
    await f.write(config);
    return f;
  }

  async write(config: string): Promise<void> {
    await writeFile(join(this.dir, 'main.yaml'), config.replaceAll('${RECEIVER}', this.receiver.url));
  }

  /** Plans and applies the config files (like `backflow apply --auto-approve --no-refresh`). */
  async apply(): Promise<StateDocument> {
    const { config, diagnostics } = await readConfig(this.dir);
    if (!config) throw new Error(`invalid test config: ${diagnostics.map((d) => d.summary).join('; ')}`);
    const backend = new LocalStateBackend(join(this.dir, '.backflow/state.json'));
    try {
      return (await applyPlan({ plan: plan({ config, state: await backend.read() }), backend })).state;
    } finally {
      await backend.close();
    }
  }

  async start(over: Partial<AgentRequest> = {}): Promise<StartedAgent> {
    const out = new PassThrough();
    const lines: LogLine[] = [];
    const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
    let buffered = '';
    out.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = JSON.parse(buffered.slice(0, nl)) as LogLine;
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        for (const w of [...waiters])
          if (w.pred(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        nl = buffered.indexOf('\n');
      }
    });
    const { config } = await readConfig(this.dir);
    const agent = await startAgent({
      configDir: this.dir,
      settings: (config?.doc.settings ?? {}) as BackflowConfig['settings'],
      out,
      ...over,
    });
    const base = `http://${agent.address}`;
    return {
      agent,
      base,
      lines,
      waitFor: (pred, timeoutMs = 20_000) => {
        const seen = lines.find(pred);
        if (seen) return Promise.resolve(seen);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(
                new Error(
                  `no matching log line in ${timeoutMs} ms; saw:\n${lines.map((l) => l.message).join('\n')}`,
                ),
              ),
            timeoutMs,
          );
          waiters.push({
            pred,
            resolve: (l) => {
              clearTimeout(timer);
              resolve(l);
            },
          });
        });
      },
      call: async (path, init) => {
        const res = await fetch(`${base}${path}`, init);
        const text = await res.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // metrics and other text bodies stay text
        }
        return { status: res.status, body, headers: res.headers };
      },
    };
  }

  async close(): Promise<void> {
    this.wh.close();
    await this.receiver.close();
  }
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
