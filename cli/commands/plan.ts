import { writeFile } from 'node:fs/promises';
import type { Config } from '../../engine/config/index.js';
import { hasErrors } from '../../engine/diagnostics.js';
import { ConfigError } from '../../engine/errors.js';
import { plan } from '../../engine/plan/plan.js';
import { refresh } from '../../engine/plan/refresh.js';
import type { Plan } from '../../engine/plan/types.js';
import type { StateDocument } from '../../engine/state/types.js';
import { type IO, print, printJson } from '../io.js';
import { renderPlanText } from '../render/plan-text.js';
import { loadConfig, runtimeStore, stateBackend } from '../workspace.js';

export interface PlanOptions {
  readonly dir: string;
  readonly json?: boolean;
  readonly out?: string;
  readonly detailedExitcode?: boolean;
  readonly refresh?: boolean;
  readonly githubComment?: boolean;
}

/** Builds a plan for a loaded config against a state (refreshing unless told not to). */
export async function makePlan(
  config: Config,
  state: StateDocument | null,
  opts: { refresh?: boolean },
): Promise<Plan> {
  if (opts.refresh === false) return plan({ config, state });
  const store = await runtimeStore(config, { ifExists: true }).catch(() => undefined);
  try {
    const r = await refresh({ config, stateResources: state?.resources ?? [], ...(store ? { store } : {}) });
    return plan({
      config,
      state,
      refreshDiagnostics: r.diagnostics,
      recordCounts: r.recordCounts,
      health: r.health,
    });
  } finally {
    await store?.close();
  }
}

/** `backflow plan`: what apply will change, and what that does to data. */
export async function planCommand(io: IO, opts: PlanOptions): Promise<number> {
  let config: Config;
  try {
    config = await loadConfig(io, opts.dir);
  } catch (e) {
    if (opts.githubComment && e instanceof ConfigError) {
      // Replace the previous plan comment and fail the status, so a broken push cannot look green.
      const { reportPlanFailure } = await import('../../engine/github/report.js');
      await reportPlanFailure({ dir: opts.dir, diagnostics: e.diagnostics });
    }
    throw e;
  }
  const backend = await stateBackend(config);
  let result: Plan;
  try {
    result = await makePlan(config, await backend.read(), opts);
  } finally {
    await backend.close();
  }
  if (opts.out) await writeFile(opts.out, `${JSON.stringify(result, null, 2)}\n`);
  if (opts.json) printJson(io, planJson(result));
  else {
    print(io, renderPlanText(result, io.style));
    if (opts.out)
      print(
        io,
        `Saved the plan to: ${opts.out}\n\nTo perform exactly these actions, run:\n  backflow apply ${opts.out}`,
      );
  }
  if (opts.githubComment) {
    const { reportPlan } = await import('../../engine/github/report.js');
    const posted = await reportPlan({ plan: result, dir: opts.dir });
    io.err.write(
      posted.commentUrl
        ? `Posted the plan to ${posted.commentUrl} (status backflow/plan: ${posted.statusState}).\n`
        : `No pull request for ${posted.sha}: set the status backflow/plan (${posted.statusState}) only.\n`,
    );
  }
  if (hasErrors(result.diagnostics)) return 1;
  if (opts.detailedExitcode && result.changes.length > 0) return 2;
  return 0;
}

/** The `--json` form: SPEC's fields (the saved plan file holds more, for apply). */
export function planJson(p: Plan) {
  return {
    format_version: p.format_version,
    state: p.state,
    changes: p.changes.map((c) => ({
      address: c.address,
      action: c.action,
      before: c.before,
      after: c.after,
      diff: c.diff,
      effects: c.effects,
      ...(c.reason ? { reason: c.reason } : {}),
    })),
    summary: p.summary,
    diagnostics: p.diagnostics,
    ...(p.health ? { health: p.health } : {}),
  };
}
