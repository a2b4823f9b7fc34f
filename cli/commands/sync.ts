import { UserError } from '../../engine/errors.js';
import { afterRun } from '../../engine/sync/after-run.js';
import { replayRun } from '../../engine/sync/replay.js';
import { requestReset, runSync } from '../../engine/sync/run.js';
import type { SyncRun } from '../../engine/sync/types.js';
import { type IO, interruptible, print, printJson } from '../io.js';
import { renderRunText } from '../render/run-text.js';
import { readSettings } from '../settings.js';
import { runtimeStore, stateBackend } from '../workspace.js';

async function withRuntime<T>(
  io: IO,
  dir: string,
  fn: (ctx: Awaited<ReturnType<typeof open>>) => Promise<T>,
): Promise<T> {
  const ctx = await open(io, dir);
  try {
    return await fn(ctx);
  } finally {
    await ctx.store.close();
  }
}

async function open(io: IO, dir: string) {
  const config = await readSettings(io, dir);
  const backend = await stateBackend(config);
  let state: Awaited<ReturnType<typeof backend.read>>;
  try {
    state = await backend.read();
  } finally {
    await backend.close();
  }
  const store = (await runtimeStore(config))!;
  return { config, state, store };
}

function printRun(io: IO, run: SyncRun, json?: boolean): number {
  if (json) printJson(io, run);
  else print(io, renderRunText(run, io.style));
  return run.status === 'failed' ? 1 : 0;
}

/** `backflow sync MAPPING [--reset] [--json]`: one sync now; exit 1 when the run failed. */
export async function syncCommand(
  io: IO,
  opts: { dir: string; mapping: string; reset?: boolean; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ config, state, store }) => {
    // Take the mapping's lease like an agent does, so a running agent never overlaps this sync.
    const { withMappingLease } = await import('../../engine/agent/recovery.js');
    const run = await interruptible((interrupt) =>
      withMappingLease({ store, mapping: opts.mapping, signal: interrupt }, (signal) =>
        runSync({
          mapping: opts.mapping,
          state,
          configDir: config.dir,
          store,
          trigger: 'manual',
          ...(opts.reset ? { reset: true } : {}),
          signal,
        }),
      ),
    );
    await afterRun({ run, state, store, configDir: config.dir, log: (m) => io.err.write(`${m}\n`) });
    return printRun(io, run, opts.json);
  });
}

/** `backflow reset MAPPING`: the next sync sends every record. */
export async function resetCommand(io: IO, opts: { dir: string; mapping: string }): Promise<number> {
  return withRuntime(io, opts.dir, async ({ state, store }) => {
    if (!state?.resources.some((r) => r.address === `mapping.${opts.mapping}`))
      throw new UserError(`mapping ${opts.mapping} is not in the applied state`, {
        hint: 'see `backflow state list`',
      });
    await requestReset(store, opts.mapping);
    print(io, `The next sync of ${opts.mapping} will send every record the model returns (a full resync).`);
    return 0;
  });
}

/** `backflow replay RUN_ID`: re-sends every record that run selected. */
export async function replayCommand(
  io: IO,
  opts: { dir: string; runId: string; json?: boolean },
): Promise<number> {
  return withRuntime(io, opts.dir, async ({ config, state, store }) => {
    const run = await interruptible((signal) =>
      replayRun({ runId: opts.runId, state, configDir: config.dir, store, signal }),
    );
    await afterRun({ run, state, store, configDir: config.dir, log: (m) => io.err.write(`${m}\n`) });
    return printRun(io, run, opts.json);
  });
}

export { withRuntime };
