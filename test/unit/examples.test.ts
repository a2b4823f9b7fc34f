import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../engine/config/index.js';
import { plan } from '../../engine/plan/plan.js';

const examples = join(import.meta.dirname, '..', '..', 'examples');
const configDirs = readdirSync(examples).filter(
  (d) =>
    statSync(join(examples, d)).isDirectory() &&
    readdirSync(join(examples, d)).some((f) => /\.(ya?ml|hcl)$/.test(f) && f !== 'backflow.yml'),
);

describe('examples', () => {
  it('has examples', () => {
    expect(configDirs).toContain('quickstart');
    expect(configDirs).toContain('segments-mysql');
  });
  for (const dir of configDirs) {
    it(`examples/${dir} validates and plans`, async () => {
      const { config, diagnostics } = await readConfig(join(examples, dir));
      expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      const p = plan({ config: config!, state: null });
      expect(p.summary.create).toBe(config!.resources.length);
    });
  }
});
