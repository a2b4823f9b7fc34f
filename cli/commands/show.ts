import { type IO, print, printJson } from '../io.js';
import { renderPlanText } from '../render/plan-text.js';
import { loadConfig, stateBackend } from '../workspace.js';
import { readPlanFile } from './apply.js';
import { planJson } from './plan.js';

/** `backflow show [PLANFILE]`: a saved plan, or the applied state. */
export async function showCommand(
  io: IO,
  opts: { dir: string; planFile?: string; json?: boolean },
): Promise<number> {
  if (opts.planFile) {
    const p = await readPlanFile(opts.planFile);
    if (opts.json) printJson(io, planJson(p));
    else print(io, renderPlanText(p, io.style));
    return 0;
  }
  const config = await loadConfig(io, opts.dir);
  const backend = await stateBackend(config);
  try {
    const state = await backend.read();
    if (opts.json) {
      printJson(io, state ?? { serial: 0, lineage: null, resources: [] });
      return 0;
    }
    if (!state || state.resources.length === 0) {
      print(io, 'The state is empty: nothing has been applied yet.');
      return 0;
    }
    const lines = [
      `# state serial ${state.serial}, lineage ${state.lineage}, applied ${state.applied_at ?? 'unknown'}`,
      '',
    ];
    for (const r of state.resources) {
      lines.push(`# ${r.address}:`);
      lines.push(`${r.kind} "${r.name}" ${JSON.stringify(r.body, null, 2)}`, '');
    }
    print(io, lines.join('\n'));
    return 0;
  } finally {
    await backend.close();
  }
}
