import type { Command } from 'commander';
import type { CommandKit } from '../runtime-commands.js';
import { historyExportCommand } from './history.js';
import { statusCommand } from './status.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `backflow status` and `backflow history export`: the status document and the run history, for CI and audits. */
export function registerStatusCommands(program: Command, { dir, run, io }: CommandKit): void {
  program
    .command('status')
    .description(
      'how every mapping and segment integration is doing (exit 1 when a --fail-on mapping is failing)',
    )
    .option('--json', 'print the status document as JSON')
    .option(
      '--fail-on <mapping>',
      'exit 1 when this mapping\'s last run failed (repeatable; "all": any applied mapping)',
      collect,
    )
    .action(
      run(async (o: { json?: boolean; failOn?: string[] }) => statusCommand(io(), { dir: dir(), ...o })),
    );

  program
    .command('history')
    .description('the run history')
    .command('export')
    .description('every run started in a window with its counts and errors, for audits (newest first)')
    .option('--since <when>', 'a duration ago (7d) or a date', '7d')
    .option('--until <when>', 'a duration ago or a date (default: now)')
    .option(
      '--format <format>',
      'jsonl (one run per line, as `syncs show --json`) or csv (default: from --out, else jsonl)',
    )
    .option('--out <file>', 'write to this file (default: stdout)')
    .option('--mapping <mapping>', 'only this mapping (repeatable)', collect)
    .action(
      run(async (o: { since?: string; until?: string; format?: string; out?: string; mapping?: string[] }) =>
        historyExportCommand(io(), { dir: dir(), ...o }),
      ),
    );
}
