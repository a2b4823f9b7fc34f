import type { Command } from 'commander';
import type { CommandKit } from '../runtime-commands.js';
import {
  segmentsClearCommand,
  segmentsDiscardCommand,
  segmentsFlushCommand,
  segmentsProfilesCommand,
  segmentsQueueCommand,
  segmentsRefreshCommand,
  segmentsResyncCommand,
  segmentsStatsCommand,
} from './segments.js';

/** `backflow segments …`: segment events, queues and statistics (runtime commands: they use the applied state). */
export function registerSegmentCommands(program: Command, { dir, run, io }: CommandKit): void {
  const segments = program
    .command('segments')
    .description('static segment integrations: queue events, flush queues, statistics');

  for (const kind of ['add', 'remove'] as const)
    segments
      .command(`${kind} <segment>`)
      .description(
        kind === 'add'
          ? 'queue profiles added to a managed segment (every profile needs the segment key field)'
          : 'queue profiles removed from a managed segment',
      )
      .requiredOption(
        '--file <file>',
        'profiles: JSON Lines (.jsonl, one object per line) or CSV with a header row',
      )
      .option('--format <format>', 'jsonl or csv (default: from the file name)')
      .option('--json', 'print the result as JSON')
      .action(
        run(async (segment: string, o: { file: string; format?: string; json?: boolean }) =>
          segmentsProfilesCommand(io(), { dir: dir(), segment, kind, ...o }),
        ),
      );

  segments
    .command('clear <segment>')
    .description('empty a managed segment (the clear query, or a remove of every member where there is none)')
    .option('--json', 'print the result as JSON')
    .action(
      run(async (segment: string, o: { json?: boolean }) =>
        segmentsClearCommand(io(), { dir: dir(), segment, ...o }),
      ),
    );

  segments
    .command('resync <segment>')
    .description("re-send a segment's whole current membership (clear first where a clear query exists)")
    .option('--integration <integration>', 'only this integration')
    .option('--json', 'print the result as JSON')
    .action(
      run(async (segment: string, o: { integration?: string; json?: boolean }) =>
        segmentsResyncCommand(io(), { dir: dir(), segment, ...o }),
      ),
    );

  segments
    .command('refresh [segment]')
    .description('run the models of model-backed segments now and queue the membership changes')
    .option('--json', 'print the result as JSON')
    .action(
      run(async (segment: string | undefined, o: { json?: boolean }) =>
        segmentsRefreshCommand(io(), { dir: dir(), ...(segment ? { segment } : {}), ...o }),
      ),
    );

  segments
    .command('flush [integration]')
    .description('run the batches that are due now (for use without the agent); exit 1 when a query failed')
    .option(
      '--all',
      'also batches not due yet (waiting for batch.size/batch.timeout, or backing off after a failure)',
    )
    .option('--segment <segment>', 'only this segment')
    .option('--json', 'print the flush report as JSON')
    .action(
      run(async (integration: string | undefined, o: { all?: boolean; segment?: string; json?: boolean }) =>
        segmentsFlushCommand(io(), { dir: dir(), ...(integration ? { integration } : {}), ...o }),
      ),
    );

  segments
    .command('stats <integration>')
    .description('successful queries in a window, and each error with its time, query kind and message')
    .option('--since <when>', 'a duration ago (24h, 7d) or a date', '24h')
    .option('--until <when>', 'a duration ago or a date (default: now)')
    .option('--json', 'print JSON')
    .action(
      run(async (integration: string, o: { since?: string; until?: string; json?: boolean }) =>
        segmentsStatsCommand(io(), { dir: dir(), integration, ...o }),
      ),
    );

  segments
    .command('discard <integration>')
    .description(
      'give up on the failed batch at the head of a queue (its query keeps failing): the queue goes on without it',
    )
    .requiredOption('--segment <segment>', 'the queue: this segment of the integration')
    .option(
      '--out <file>',
      "write the batch's profiles to this new JSON Lines file, to queue them again later",
    )
    .option('--drop', "let the batch's profiles go without keeping them")
    .option('--json', 'print the result as JSON')
    .action(
      run(async (integration: string, o: { segment: string; out?: string; drop?: boolean; json?: boolean }) =>
        segmentsDiscardCommand(io(), { dir: dir(), integration, ...o }),
      ),
    );

  segments
    .command('queue')
    .description('what waits in each segment queue (events, profiles, in flight, retries)')
    .option('--json', 'print JSON')
    .action(run(async (o: { json?: boolean }) => segmentsQueueCommand(io(), { dir: dir(), ...o })));
}
