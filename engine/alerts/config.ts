import { durationOr } from '../config/durations.js';
import { resolveDeep } from '../config/env.js';
import { loadDocument } from '../config/load.js';
import { appliedUnredacted, DEFAULTS } from '../config/normalize.js';
import type { Alert, BackflowConfig } from '../config/types.gen.js';
import { UserError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { AppliedAlert } from './types.js';

/** The alerts of the applied state, by name order. */
export function appliedAlerts(state: StateDocument | null): AppliedAlert[] {
  return (state?.resources ?? [])
    .filter((r) => r.kind === 'alert')
    .map((r) => ({
      name: r.name,
      body: r.body as unknown as Alert,
      ...(r.sensitive_digest ? { sensitive_digest: r.sensitive_digest } : {}),
    }));
}

/** `repeat_after` in milliseconds (default 24h). */
export const repeatAfterMs = (repeatAfter: string | undefined): number =>
  durationOr(repeatAfter ?? DEFAULTS.repeatAfter, 86_400_000);

/** One applied alert by name, or undefined when it is no longer applied. */
export function findAlert(state: StateDocument | null, name: string): AppliedAlert | undefined {
  return appliedAlerts(state).find((a) => a.name === name);
}

export interface ResolveChannelRequest<C extends 'email' | 'slack'> {
  readonly alert: AppliedAlert;
  readonly channel: C;
  readonly configDir: string;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * One channel block of the alert (`email` or `slack`) with `${env:NAME}` resolved, at send time
 * only; undefined when the alert has no such channel. A body that state keeps redacted (an inline
 * SMTP password) takes the value from the config files while it is the one that was applied, as
 * connections do. Each channel resolves on its own: a variable missing for one does not stop the other.
 */
export async function resolveChannel<C extends 'email' | 'slack'>(
  req: ResolveChannelRequest<C>,
): Promise<Alert[C] | undefined> {
  const body = req.alert.sensitive_digest ? await unredacted(req) : req.alert.body;
  const block = body[req.channel];
  return block === undefined ? undefined : resolveDeep(block, `alert.${req.alert.name}`, req.env);
}

async function unredacted(req: { alert: AppliedAlert; configDir: string }): Promise<Alert> {
  const loaded = await loadDocument(req.configDir);
  const body = appliedUnredacted(loaded.data as BackflowConfig, {
    kind: 'alert',
    name: req.alert.name,
    sensitive_digest: req.alert.sensitive_digest!,
  });
  if (body) return body as unknown as Alert;
  throw new UserError(
    `alert.${req.alert.name} holds an inline password, which state keeps only redacted, and the config files in ${req.configDir} no longer hold the applied value`,
    { hint: 'move the password into ${env:NAME} and run `backflow apply`' },
  );
}
