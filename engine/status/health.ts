import type { BackflowConfig } from '../config/types.gen.js';
import type { MappingHealth } from '../plan/types.js';
import { entryOf } from './document.js';
import { openStatusStore } from './index.js';

export interface HealthFromStatusRequest {
  readonly dir: string;
  readonly settings: BackflowConfig['settings'];
  readonly mappings: readonly string[];
}

/**
 * The last run of each mapping as the status document records it: what `plan` shows where the
 * runtime store is not reachable (a CI job that only has the state). Informative: a document that
 * cannot be read gives no health rather than failing the plan.
 */
export async function healthFromStatus(req: HealthFromStatusRequest): Promise<MappingHealth[]> {
  if (req.mappings.length === 0) return [];
  try {
    const status = await openStatusStore(req.dir, req.settings);
    try {
      const doc = await status.read();
      const out: MappingHealth[] = [];
      for (const mapping of req.mappings) {
        const last = entryOf(doc, 'mapping', mapping)?.last_run;
        if (last) out.push({ mapping, status: last.status, started_at: last.started_at, run_id: last.id });
      }
      return out;
    } finally {
      await status.close();
    }
  } catch {
    return [];
  }
}
