import { redact } from '../config/env.js';
import { DEFAULTS } from '../config/normalize.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { appliedAlerts } from './config.js';
import { deliveryHealth } from './deliveries.js';
import { DEFAULT_FROM } from './email.js';
import { listIncidents } from './incidents.js';
import { RUN_TRIGGERS } from './triggers.js';

/** An applied alert with its triggers, scope, active recipients and current state (`backflow alerts list --json`). */
export interface AlertSummary {
  readonly name: string;
  readonly on: readonly string[];
  /** Mappings whose runs it watches: `all`, a list, or null when it has no run trigger. */
  readonly mappings: 'all' | readonly string[] | null;
  /** Integrations whose failed queries it reports: `all`, a list, or null without `segment_failed`. */
  readonly segment_integrations: 'all' | readonly string[] | null;
  readonly repeat_after: string;
  readonly recipients: {
    /** The SMTP URL as applied: an `${env:NAME}` reference, or redacted. */
    readonly email: { readonly to: readonly string[]; readonly from: string; readonly smtp: string } | null;
    readonly slack: { readonly channel: string | null } | null;
    readonly in_app: boolean;
  };
  /** Topics this alert currently considers failing. */
  readonly incidents: readonly {
    readonly topic: string;
    readonly status: string;
    readonly since: string;
    readonly failing_runs: number;
    readonly last_notified_at: string;
  }[];
  readonly deliveries: { readonly pending: number; readonly failed: number };
}

/** Every applied alert, described from the state (recipients) and the store (incidents, deliveries). */
export async function describeAlerts(req: {
  state: StateDocument | null;
  store: RuntimeStore | undefined;
}): Promise<AlertSummary[]> {
  const incidents = req.store ? await listIncidents({ store: req.store }) : [];
  const health = req.store
    ? await deliveryHealth(req.store)
    : new Map<string, { pending: number; failed: number }>();
  return appliedAlerts(req.state).map(({ name, body }) => ({
    name,
    on: body.on,
    mappings: body.on.some((t) => (RUN_TRIGGERS as readonly string[]).includes(t))
      ? (body.mappings ?? 'all')
      : null,
    segment_integrations: body.on.includes('segment_failed') ? (body.segment_integrations ?? 'all') : null,
    repeat_after: body.repeat_after ?? DEFAULTS.repeatAfter,
    recipients: {
      email: body.email
        ? { to: body.email.to, from: body.email.from ?? DEFAULT_FROM, smtp: redact(body.email.smtp.url) }
        : null,
      slack: body.slack ? { channel: body.slack.channel ?? null } : null,
      in_app: body.in_app === true,
    },
    incidents: incidents
      .filter((i) => i.alert === name)
      .map((i) => ({
        topic: i.topic,
        status: i.status,
        since: i.opened_at,
        failing_runs: Number(i.failing_runs),
        last_notified_at: i.last_notified_at,
      })),
    deliveries: health.get(name) ?? { pending: 0, failed: 0 },
  }));
}
