import type { Command } from 'commander';
import { ABORT_WAIT_MS, DEFAULT_SHUTDOWN_GRACE_MS, startAgent } from '../../engine/agent/agent.js';
import { parseDuration } from '../../engine/config/durations.js';
import { UserError } from '../../engine/errors.js';
import type { IO } from '../io.js';
import type { CommandKit } from '../runtime-commands.js';
import { readSettings } from '../settings.js';

export interface AgentOptions {
  readonly dir: string;
  readonly listen?: string;
  readonly token?: string;
  readonly once?: boolean;
  readonly concurrency?: string;
  readonly shutdownGrace?: string;
}

/**
 * `backflow agent`: runs the applied state until SIGTERM/SIGINT (or, with `--once`, what is due
 * now). The first signal drains (in-flight syncs get the grace period, then are aborted safely);
 * a second one aborts at once; if the agent is still not down after the hard limit, the process
 * exits with 1 regardless.
 */
export async function agentCommand(io: IO, opts: AgentOptions): Promise<number> {
  const config = await readSettings(io, opts.dir);
  const concurrency = opts.concurrency === undefined ? undefined : Number(opts.concurrency);
  if (concurrency !== undefined && !Number.isSafeInteger(concurrency))
    throw new UserError(`--concurrency ${opts.concurrency} is not a whole number`, {
      hint: 'e.g. --concurrency 4',
    });
  const grace =
    opts.shutdownGrace === undefined ? DEFAULT_SHUTDOWN_GRACE_MS : parseDuration(opts.shutdownGrace);
  if (grace === undefined)
    throw new UserError(`--shutdown-grace ${opts.shutdownGrace} is not a duration`, {
      hint: 'e.g. --shutdown-grace 30s or 0s',
    });
  const token = opts.token ?? process.env.BACKFLOW_TOKEN;
  const agent = await startAgent({
    configDir: config.dir,
    settings: config.doc.settings,
    ...(opts.listen ? { listen: opts.listen } : {}),
    ...(token ? { token } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(opts.once ? { once: true } : {}),
    shutdownGraceMs: grace,
    out: io.out,
  });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      agent.stop();
      // The hard limit: whatever is stuck, the process ends.
      setTimeout(
        () => {
          io.err.write(
            `backflow agent: still not stopped ${Math.round((grace + ABORT_WAIT_MS) / 1000) + 5}s after ${signal}; exiting\n`,
          );
          process.exit(1);
        },
        grace + ABORT_WAIT_MS + 5_000,
      ).unref();
    } else agent.stop({ now: true });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await agent.exited;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/** `backflow agent [--listen ADDR] [--token T] [--once] [--concurrency N] [--shutdown-grace D]`. */
export function registerAgentCommand(program: Command, { dir, run, io }: CommandKit): void {
  program
    .command('agent')
    .description(
      'run the applied state as a daemon: schedules, retries, segment queues, HTTP API and metrics',
    )
    .option('--listen <addr>', 'HTTP address (default settings.agent.listen, then 127.0.0.1:7465)')
    .option(
      '--token <token>',
      'bearer token every request must carry (or BACKFLOW_TOKEN); required beyond loopback',
    )
    .option('--once', 'run what is due once and exit (1 when a run failed)')
    .option('--concurrency <n>', 'syncs at once (default settings.agent.concurrency, then 4)')
    .option(
      '--shutdown-grace <duration>',
      'how long in-flight syncs may finish after SIGTERM before they are aborted',
      '10s',
    )
    .action(run(async (o: Omit<AgentOptions, 'dir'>) => agentCommand(io(), { dir: dir(), ...o })));
}
