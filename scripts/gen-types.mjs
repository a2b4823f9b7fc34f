// Generates engine/config/types.gen.ts from schemas/config.schema.json (the single source of truth).
// `node scripts/gen-types.mjs --check` exits 1 when the committed file has drifted.
import { readFileSync, writeFileSync } from 'node:fs';
import { compile } from 'json-schema-to-typescript';

const schemaUrl = new URL('../schemas/config.schema.json', import.meta.url);
const outUrl = new URL('../engine/config/types.gen.ts', import.meta.url);

export async function generate() {
  const schema = JSON.parse(readFileSync(schemaUrl, 'utf8'));
  return compile(schema, 'BackflowConfig', {
    bannerComment:
      '/* Generated from schemas/config.schema.json by `npm run gen:types`. Do not edit: change the schema. */',
    additionalProperties: false,
    unreachableDefinitions: true,
    style: { singleQuote: true, printWidth: 110 },
  });
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const text = await generate();
  if (process.argv.includes('--check')) {
    const current = readFileSync(outUrl, 'utf8');
    if (current !== text) {
      console.error('engine/config/types.gen.ts is out of date: run `npm run gen:types`');
      process.exit(1);
    }
  } else {
    writeFileSync(outUrl, text);
  }
}
