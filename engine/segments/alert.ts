/** Tells the alerts feature (engine/alerts/segment.ts, when this build has it) that a batch keeps failing. */
import { errorMessage } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import type { EventKind } from './types.js';

export interface SegmentFailure {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly configDir: string;
  readonly integration: string;
  readonly segment: string;
  readonly kind: EventKind;
  readonly error: string;
  readonly attempts: number;
  readonly now: Date;
}

interface AlertsModule {
  dispatchSegmentFailure(req: SegmentFailure & { log?: (line: string) => void }): Promise<void>;
}

/** Loaded lazily: alerting pulls in mail and HTTP clients a flush rarely needs. */
async function load(): Promise<AlertsModule | undefined> {
  const specifier = '../alerts/segment.js';
  try {
    return (await import(specifier)) as AlertsModule;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw e;
  }
}

/** Dispatches the alert; returns a warning when that failed (the queue goes on either way). */
export async function alertSegmentFailure(failure: SegmentFailure): Promise<string | undefined> {
  const warnings: string[] = [];
  try {
    const mod = await load();
    if (!mod) return undefined;
    await mod.dispatchSegmentFailure({ ...failure, log: (line) => warnings.push(line) });
  } catch (e) {
    warnings.push(`could not send the segment failure alert: ${errorMessage(e)}`);
  }
  return warnings.length ? warnings.join('; ') : undefined;
}
