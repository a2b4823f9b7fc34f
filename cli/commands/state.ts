import { UserError } from '../../engine/errors.js';
import { type IO, print, printJson } from '../io.js';
import { loadConfig, stateBackend } from '../workspace.js';

/** `backflow state list|show ADDRESS|unlock ID`. */
export async function stateCommand(
  io: IO,
  opts: { dir: string; sub: 'list' | 'show' | 'unlock'; arg?: string; json?: boolean },
): Promise<number> {
  const config = await loadConfig(io, opts.dir);
  const backend = await stateBackend(config);
  try {
    if (opts.sub === 'unlock') {
      if (!opts.arg)
        throw new UserError('state unlock needs the lock ID', {
          hint: 'the ID is printed by the apply that found the lock',
        });
      await backend.forceUnlock(opts.arg);
      print(io, `Released the lock ${opts.arg} on ${backend.description}.`);
      return 0;
    }
    const state = await backend.read();
    const resources = state?.resources ?? [];
    if (opts.sub === 'list') {
      if (opts.json)
        printJson(
          io,
          resources.map((r) => r.address),
        );
      else if (resources.length) print(io, resources.map((r) => r.address).join('\n'));
      return 0;
    }
    const r = resources.find((x) => x.address === opts.arg);
    if (!r)
      throw new UserError(`no resource ${opts.arg} in ${backend.description}`, {
        hint: 'list addresses with `backflow state list`',
      });
    if (opts.json) printJson(io, r);
    else print(io, `# ${r.address}:\n${r.kind} "${r.name}" ${JSON.stringify(r.body, null, 2)}`);
    return 0;
  } finally {
    await backend.close();
  }
}
