/**
 * Child process for the durability test (segments-durability.test.ts): flushes every queue of a
 * workspace (all: true), printing one JSON line per query and the report at the end. The test
 * SIGKILLs it mid-batch and runs it again.
 */
import { join } from 'node:path';
import { flushDue } from '../../engine/segments/index.js';
import { LocalStateBackend } from '../../engine/state/local.js';
import { openStore } from '../../engine/store/index.js';

const dir = process.env.SEG_CHILD_DIR!;
const url = process.env.SEG_CHILD_STORE!;
const state = await new LocalStateBackend(join(dir, '.backflow/state.json')).read();
const store = await openStore({ url, configDir: dir });
try {
  const report = await flushDue({
    store,
    state,
    configDir: dir,
    all: true,
    onBatch: (o) => process.stdout.write(`${JSON.stringify({ batch: o })}\n`),
  });
  process.stdout.write(`${JSON.stringify({ report })}\n`);
} finally {
  await store.close();
}
