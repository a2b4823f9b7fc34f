/**
 * One sync in a fresh process, so its peak RSS is its own: `node dist/bench/sqlite-child.js DIR MAPPING`.
 * Prints one JSON line: {run, ms, maxRssMb}.
 */
import { readConfig } from '../engine/config/index.js';
import { applyPlan } from '../engine/plan/apply.js';
import { plan } from '../engine/plan/plan.js';
import { openStateBackend } from '../engine/state/index.js';
import { openStore } from '../engine/store/index.js';
import { runSync } from '../engine/sync/run.js';

async function main(): Promise<void> {
  const [dir, mapping] = process.argv.slice(2) as [string, string];
  const { config, diagnostics } = await readConfig(dir);
  if (!config) throw new Error(diagnostics.map((d) => d.summary).join('\n'));
  const backend = await openStateBackend(dir, config.doc.settings);
  let state = await backend.read();
  if (!state) state = (await applyPlan({ plan: plan({ config, state: null }), backend })).state;
  const store = await openStore({ url: config.doc.settings?.store?.url, configDir: dir });
  const t0 = performance.now();
  const run = await runSync({ mapping, state, configDir: dir, store, trigger: 'manual' });
  const ms = performance.now() - t0;
  await store.close();
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ run, ms, maxRssMb })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exitCode = 1;
});
