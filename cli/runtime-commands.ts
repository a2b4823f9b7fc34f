import type { Command } from 'commander';
import { registerAgentCommand } from './commands/agent.js';
import { registerAlertCommands } from './commands/alerts-register.js';
import { registerSegmentCommands } from './commands/segments-register.js';
import { registerStatusCommands } from './commands/status-register.js';
import { replayCommand, resetCommand, syncCommand } from './commands/sync.js';
import { syncsCommand, syncsShowCommand } from './commands/syncs.js';
import type { IO } from './io.js';

export interface CommandKit {
  readonly dir: () => string;
  readonly run: <T extends unknown[]>(fn: (...args: T) => Promise<number>) => (...args: T) => Promise<void>;
  readonly io: () => IO;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Runtime commands: they run the applied state against the runtime store. */
export function registerRuntimeCommands(program: Command, { dir, run, io }: CommandKit): void {
  program
    .command('sync <mapping>')
    .description('run one sync of a mapping now (exit 1 when the run failed)')
    .option('--reset', 'send every record, not only changes')
    .option('--json', 'print the run as JSON')
    .action(
      run(async (mapping: string, o: { reset?: boolean; json?: boolean }) =>
        syncCommand(io(), { dir: dir(), mapping, ...o }),
      ),
    );

  program
    .command('reset <mapping>')
    .description('make the next sync of a mapping send every record')
    .action(run(async (mapping: string) => resetCommand(io(), { dir: dir(), mapping })));

  program
    .command('replay <run_id>')
    .description('re-send every record a run selected')
    .option('--json', 'print the new run as JSON')
    .action(
      run(async (runId: string, o: { json?: boolean }) => replayCommand(io(), { dir: dir(), runId, ...o })),
    );

  const syncs = program
    .command('syncs')
    .description(
      'the sync overview: latest run per mapping (filters: status, time, model, destination, mapping status, text)',
    )
    .option('--status <status>', 'in_progress, success, partial_success or failed (repeatable)', collect)
    .option('--since <when>', 'runs started since a duration ago (24h) or a date')
    .option('--until <when>', 'runs started until a duration ago or a date')
    .option('--period <period>', '24h, 7d or 30d')
    .option('--model <model>', 'only this model (repeatable)', collect)
    .option('--destination <destination>', 'only this destination (repeatable)', collect)
    .option('--mapping <mapping>', 'only this mapping (repeatable)', collect)
    .option('--mapping-status <status>', 'enabled or disabled')
    .option('--search <text>', 'text in the mapping, model, source, destination or run id')
    .option('--all', 'every run, not only the latest per mapping')
    .option('--limit <n>', 'at most this many rows', '200')
    .option('--json', 'print JSON')
    .action(run(async (o: Record<string, never>) => syncsCommand(io(), { dir: dir(), ...o })));
  syncs
    .command('show <run_id>')
    .description("a run's detail: counts, errors with recommended actions, failed records")
    .option('--json', 'print JSON')
    .action(
      run(async (runId: string, o: { json?: boolean }) =>
        // `syncs show ID --json`: the parent `syncs` has --json too and takes the flag first.
        syncsShowCommand(io(), { dir: dir(), runId, json: o.json || syncs.opts<{ json?: boolean }>().json }),
      ),
    );
  registerStatusCommands(program, { dir, run, io });
  registerAgentCommand(program, { dir, run, io });
  registerAlertCommands(program, { dir, run, io });
  registerSegmentCommands(program, { dir, run, io });
}
