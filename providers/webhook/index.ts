import { manifests } from '../manifests.js';
import type { OpenRequest, Provider, Session } from '../sdk.js';
import { parseWebhookSettings } from './connection.js';
import { type RetryPolicy, WebhookDestination } from './destination.js';

/** A webhook provider whose POSTs retry by `retry` (tests shorten the waits; the default is `provider`). */
export function webhookProvider(retry?: Partial<RetryPolicy>): Provider {
  return {
    manifest: manifests.webhook,
    async open(req: OpenRequest): Promise<Session> {
      const settings = parseWebhookSettings(req.settings, req.address);
      const destination = new WebhookDestination({ settings, ...(retry ? { retry } : {}) });
      // fetch pools its own connections: nothing to close.
      return { destination, close: async () => {} };
    },
  };
}

/** `type: webhook`: action `post`, one JSON POST per batch (SPEC §3). */
export const provider: Provider = webhookProvider();

export { parseDuration } from '../sql/settings.js';
export { parseWebhookSettings, type WebhookSettings } from './connection.js';
export { DEFAULT_RETRY, type RetryPolicy, WebhookDestination } from './destination.js';
