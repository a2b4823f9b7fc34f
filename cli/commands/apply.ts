import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { hasErrors } from '../../engine/diagnostics.js';
import { UserError } from '../../engine/errors.js';
import { applyPlan } from '../../engine/plan/apply.js';
import type { Plan } from '../../engine/plan/types.js';
import type { StateDocument } from '../../engine/state/types.js';
import { confirm, type IO, print, printJson } from '../io.js';
import { renderPlanText } from '../render/plan-text.js';
import { loadConfig, runtimeStore, stateBackend } from '../workspace.js';
import { makePlan } from './plan.js';

export interface ApplyOptions {
  readonly dir: string;
  readonly planFile?: string;
  readonly autoApprove?: boolean;
  readonly json?: boolean;
  readonly refresh?: boolean;
  readonly githubComment?: boolean;
}

/** `backflow apply [PLANFILE]`: records the plan as the new state. */
export async function applyCommand(io: IO, opts: ApplyOptions): Promise<number> {
  const config = await loadConfig(io, opts.dir);
  const backend = await stateBackend(config);
  try {
    let result: Awaited<ReturnType<typeof applyPlan>>;
    let thePlan: Plan;
    let previous: StateDocument | null;
    if (opts.planFile) {
      thePlan = await readPlanFile(opts.planFile);
      if (resolve(thePlan.dir) !== resolve(config.dir))
        throw new UserError(`${opts.planFile} was made for ${thePlan.dir}, not ${config.dir}`, {
          hint: 'pass the same --dir the plan was made with',
        });
      previous = await backend.read();
      result = await applyPlan({ plan: thePlan, backend, ...(await appliedFrom(opts)) });
    } else {
      const lock = await backend.lock({ operation: 'apply' });
      try {
        previous = await backend.read();
        thePlan = await makePlan(config, previous, opts);
        if (!opts.json) print(io, renderPlanText(thePlan, io.style));
        if (hasErrors(thePlan.diagnostics)) return 1;
        if (thePlan.changes.length === 0) {
          if (opts.json)
            printJson(io, { applied: false, serial: thePlan.state.serial, summary: thePlan.summary });
          else print(io, 'Apply complete! Resources: 0 added, 0 changed, 0 destroyed.');
          return 0;
        }
        if (!opts.autoApprove) {
          if (!io.interactive)
            throw new UserError('apply needs confirmation, but there is no terminal to ask on', {
              hint: 'review the plan and pass --auto-approve, or save it with `backflow plan --out FILE` and run `backflow apply FILE`',
            });
          if (!(await confirm('Do you want to perform these actions?'))) {
            print(io, '\nApply cancelled.');
            return 1;
          }
        }
        result = await applyPlan({ plan: thePlan, backend, lock, ...(await appliedFrom(opts)) });
      } finally {
        await lock.release();
      }
    }
    await queueSegmentEffects(io, config, previous, result);
    const s = thePlan.summary;
    if (opts.json)
      printJson(io, {
        applied: result.changed,
        serial: result.state.serial,
        lineage: result.state.lineage,
        summary: s,
        effects: result.newEffects,
      });
    else
      print(
        io,
        `${io.style.green(io.style.bold('Apply complete!'))} Resources: ${s.create} added, ${s.update} changed, ${s.delete} destroyed. State serial ${result.state.serial}.`,
      );
    if (opts.githubComment) {
      const { reportApply } = await import('../../engine/github/report.js');
      const r = await reportApply({ plan: thePlan, state: result.state });
      if (r.pullRequest) io.err.write(`Reported the apply on pull request #${r.pullRequest}.\n`);
    }
    return 0;
  } finally {
    await backend.close();
  }
}

/** Segment events from apply (upsert_segment / delete_segment) go into the durable queue now. */
async function queueSegmentEffects(
  io: IO,
  config: Awaited<ReturnType<typeof loadConfig>>,
  previous: StateDocument | null,
  result: Awaited<ReturnType<typeof applyPlan>>,
): Promise<void> {
  const effects = result.newEffects.filter(
    (e) => e.effect.kind === 'upsert_segment' || e.effect.kind === 'delete_segment',
  );
  if (effects.length === 0) return;
  const store = await runtimeStore(config);
  try {
    const { enqueueApplyEffects } = await import('../../engine/segments/effects.js');
    const r = await enqueueApplyEffects({ store: store!, state: result.state, previous, effects });
    if (r.queued.length)
      io.err.write(
        `Queued ${r.queued.length} segment event(s); \`backflow segments flush\` or the agent runs them.\n`,
      );
    for (const s of r.skipped) io.err.write(`warning: segment effect ${s.id} not queued: ${s.reason}\n`);
  } finally {
    await store?.close();
  }
}

async function appliedFrom(opts: ApplyOptions) {
  if (!opts.githubComment) return {};
  const { findPullRequest } = await import('../../engine/github/report.js');
  const pr = await findPullRequest();
  return pr ? { appliedFrom: pr } : {};
}

export async function readPlanFile(file: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read plan file ${file}: ${(e as Error).message}`, {
      hint: 'create it with `backflow plan --out FILE`',
    });
  }
  let p: Plan;
  try {
    p = JSON.parse(text) as Plan;
  } catch {
    throw new UserError(`${file} is not a saved plan (not JSON)`, {
      hint: 'create it with `backflow plan --out FILE`',
    });
  }
  if (p?.format_version !== '1.0' || !Array.isArray(p.changes) || !Array.isArray(p.resources) || !p.state)
    throw new UserError(`${file} is not a saved backflow plan`, {
      hint: 'create it with `backflow plan --out FILE`',
    });
  return p;
}
