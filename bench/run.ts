/**
 * `npm run bench`: speed and memory figures, each against the raw tool measured in the same run.
 * BENCH=plan,sqlite,postgres,segments limits what runs; BENCH_ROWS sets the model size (default 1,000,000).
 */
import { benchPlan } from './plan.js';

const wanted = new Set((process.env.BENCH ?? 'plan,sqlite,postgres,segments').split(','));

async function main(): Promise<void> {
  const results: Record<string, unknown> = {};
  if (wanted.has('plan')) {
    const r = await benchPlan(2000);
    results.plan = r;
    console.log(
      `plan: ${r.resources} resources — load+validate ${r.load_validate_ms} ms, plan ${r.plan_ms} ms (target: well under 1000 ms)`,
    );
  }
  for (const [name, mod] of [
    ['sqlite', './sqlite.js'],
    ['postgres', './postgres-run.js'],
    ['segments', './segments.js'],
  ] as const) {
    if (!wanted.has(name)) continue;
    try {
      const m = (await import(mod)) as { run: () => Promise<Record<string, unknown>> };
      results[name] = await m.run();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') continue;
      throw e;
    }
  }
  if (process.env.BENCH_JSON) console.log(JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
