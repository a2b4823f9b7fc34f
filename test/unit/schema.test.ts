import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../engine/config/schema.js';
import { SECTION_NAMES } from '../../engine/config/sections.js';
// @ts-expect-error -- a plain ESM script without types
import { generate } from '../../scripts/gen-types.mjs';

const root = join(import.meta.dirname, '..', '..');

describe('config schema', () => {
  it('the committed TypeScript types match the schema (run `npm run gen:types` after changing it)', async () => {
    const committed = readFileSync(join(root, 'engine', 'config', 'types.gen.ts'), 'utf8');
    expect(await generate()).toBe(committed);
  });

  it('covers every section of SPEC §1', () => {
    const props = Object.keys((configSchema as { properties: object }).properties);
    expect(props.sort()).toEqual(['settings', ...SECTION_NAMES].sort());
  });
});
