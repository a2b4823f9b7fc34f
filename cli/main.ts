#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../engine/errors.js';
import { packageVersion } from '../engine/paths.js';
import { applyCommand } from './commands/apply.js';
import { initCommand } from './commands/init.js';
import { planCommand } from './commands/plan.js';
import { schemaCommand } from './commands/schema.js';
import { showCommand } from './commands/show.js';
import { stateCommand } from './commands/state.js';
import { validateCommand } from './commands/validate.js';
import { type IO, processIO, reportError } from './io.js';
import { registerRuntimeCommands } from './runtime-commands.js';

/** argv → command → exit code. Commands are thin: flags → engine call → renderer. */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const io = (): IO => processIO({ color: !argv.includes('--no-color') });
  const run =
    <T extends unknown[]>(fn: (...args: T) => Promise<number>) =>
    async (...args: T) => {
      try {
        exitCode = await fn(...args);
      } catch (e) {
        exitCode = e instanceof ConfigError ? 1 : reportError(io(), e);
      }
    };

  const program = new Command('backflow')
    .description('Reverse ETL and static-segment SQL synchronisation as code.')
    .version(packageVersion)
    .option('--dir <dir>', 'config directory', '.')
    .option('--no-color', 'plain output')
    .showHelpAfterError()
    .exitOverride();
  const dir = () => program.opts<{ dir: string }>().dir;

  program
    .command('validate')
    .description('check the configuration; prints FILE:LINE:COL: error: MESSAGE for each problem')
    .option('--json', 'print {valid, diagnostics}')
    .action(run(async (o: { json?: boolean }) => validateCommand(io(), { dir: dir(), ...o })));

  program
    .command('plan')
    .description('show what apply will change and what that does to data')
    .option('--json', 'print the plan as JSON')
    .option('--out <file>', 'save the plan for `backflow apply FILE`')
    .option('--detailed-exitcode', 'exit 0 with no changes, 2 with changes, 1 on error')
    .option('--no-refresh', 'do not connect to sources and destinations')
    .option('--github-comment', 'post the plan on the pull request and set the backflow/plan status')
    .action(
      run(
        async (o: {
          json?: boolean;
          out?: string;
          detailedExitcode?: boolean;
          refresh?: boolean;
          githubComment?: boolean;
        }) => planCommand(io(), { dir: dir(), ...o }),
      ),
    );

  program
    .command('apply [planfile]')
    .description('record the plan as the new state (plans and asks unless given a saved plan)')
    .option('--auto-approve', 'do not ask for confirmation')
    .option('--json', 'print the result as JSON')
    .option('--no-refresh', 'do not connect to sources and destinations while planning')
    .option('--github-comment', 'report the apply on the pull request it came from')
    .action(
      run(
        async (
          planFile: string | undefined,
          o: { autoApprove?: boolean; json?: boolean; refresh?: boolean; githubComment?: boolean },
        ) => applyCommand(io(), { dir: dir(), ...(planFile ? { planFile } : {}), ...o }),
      ),
    );

  program
    .command('show [planfile]')
    .description('show a saved plan, or the applied state')
    .option('--json', 'print JSON')
    .action(
      run(async (planFile: string | undefined, o: { json?: boolean }) =>
        showCommand(io(), { dir: dir(), ...(planFile ? { planFile } : {}), ...o }),
      ),
    );

  program
    .command('init <dir>')
    .description('create a starter configuration (the quickstart: SQLite files, no server)')
    .action(run(async (target: string) => initCommand(io(), { dir: target })));

  program
    .command('schema')
    .description('print the JSON Schema of the config document')
    .action(run(async () => schemaCommand(io())));

  const state = program.command('state').description('inspect the applied state and its lock');
  state
    .command('list')
    .option('--json', 'print JSON')
    .description('list resource addresses')
    .action(run(async (o: { json?: boolean }) => stateCommand(io(), { dir: dir(), sub: 'list', ...o })));
  state
    .command('show <address>')
    .option('--json', 'print JSON')
    .description('show one resource')
    .action(
      run(async (address: string, o: { json?: boolean }) =>
        stateCommand(io(), { dir: dir(), sub: 'show', arg: address, ...o }),
      ),
    );
  state
    .command('unlock <id>')
    .description('release a stale state lock')
    .action(run(async (id: string) => stateCommand(io(), { dir: dir(), sub: 'unlock', arg: id })));

  registerRuntimeCommands(program, { dir, run, io });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    return reportError(io(), e);
  }
  return exitCode;
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry || process.argv[1]?.endsWith('/backflow') || process.argv[1]?.endsWith('main.js')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`backflow: ${String(e?.stack ?? e)}\n`);
      process.exitCode = 1;
    },
  );
}
