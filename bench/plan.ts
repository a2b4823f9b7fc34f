import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../engine/config/index.js';
import { plan } from '../engine/plan/plan.js';

/** A config of `n` resources: sources, models and mappings in equal parts, split over 10 files. */
export async function generateConfig(n: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-bench-plan-'));
  const per = Math.floor(n / 4);
  const files: string[][] = Array.from({ length: 10 }, () => []);
  for (let i = 0; i < per; i++) {
    const f = files[i % 10]!;
    f.push(
      `source "s${i}" {\n  type = "sqlite"\n  path = "w${i}.db"\n}\n`,
      `model "m${i}" {\n  source = "s${i}"\n  primary_key = "id"\n  sql = "select id, email, traits from users_${i}"\n}\n`,
      `destination "d${i}" {\n  type = "webhook"\n  url = "https://example.com/${i}"\n}\n`,
      `mapping "p${i}" {\n  model = "m${i}"\n  destination = "d${i}"\n  action = "post"\n  schedule = { every = "15m" }\n  fields = {\n    email = "email"\n    color = "traits.color"\n  }\n}\n`,
    );
  }
  await Promise.all(files.map((f, i) => writeFile(join(dir, `part${i}.hcl`), f.join('\n'))));
  return dir;
}

/** Times loading + validating + planning a 2,000-resource config (engine time, no refresh). */
export async function benchPlan(n = 2000): Promise<Record<string, number>> {
  const dir = await generateConfig(n);
  try {
    const runs: { load: number; plan: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const { config, diagnostics } = await readConfig(dir);
      const t1 = performance.now();
      if (!config) throw new Error(`generated config is invalid: ${diagnostics[0]?.summary}`);
      const p = plan({ config, state: null });
      const t2 = performance.now();
      if (p.summary.create !== n) throw new Error(`expected ${n} creates, got ${p.summary.create}`);
      runs.push({ load: t1 - t0, plan: t2 - t1 });
    }
    const best = runs.slice(1).sort((a, b) => a.load + a.plan - (b.load + b.plan))[0]!;
    return {
      resources: n,
      load_validate_ms: Math.round(best.load),
      plan_ms: Math.round(best.plan),
      total_ms: Math.round(best.load + best.plan),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
