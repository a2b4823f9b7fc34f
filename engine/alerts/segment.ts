import { errorMessage } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import { appliedAlerts, repeatAfterMs } from './config.js';
import { deliverQueued, enqueue } from './deliver.js';
import { observe } from './incidents.js';
import { segmentMessage } from './message.js';
import { alertsForIntegration, integrationTopic } from './triggers.js';

export interface SegmentFailureRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly configDir: string;
  /** The segment integration's name. */
  readonly integration: string;
  /** The segment's resource name (its id and display name are looked up in state). */
  readonly segment: string;
  /** The query kind that failed: `add`, `remove`, `clear`, `upsert_segment`, `delete_segment`. */
  readonly kind: string;
  /** The last error (an Error or its message). */
  readonly error: unknown;
  /** How many times the query was tried. */
  readonly attempts: number;
  /** Defaults to the current time. */
  readonly now?: Date;
  /** Defaults to stderr. */
  readonly log?: (line: string) => void;
}

/**
 * `segment_failed`: a segment integration query failed after its retries. Alerts whose scope
 * covers the integration hear about it once per incident (one per integration, whatever the
 * segment or query), with a reminder after `repeat_after` while failures continue; integrations
 * report no successes, so a failure after a quiet `repeat_after` starts a new incident. Never
 * throws: alerting must not break the segment queue.
 */
export async function dispatchSegmentFailure(req: SegmentFailureRequest): Promise<void> {
  const now = req.now ?? new Date();
  const log = req.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const find = (address: string) => req.state?.resources.find((r) => r.address === address)?.body;
  const integration = find(integrationTopic(req.integration));
  const segment = find(`segment.${req.segment}`);
  for (const alert of alertsForIntegration(appliedAlerts(req.state), req.integration)) {
    try {
      const policyMs = repeatAfterMs(alert.body.repeat_after);
      const { sent } = await observe({
        store: req.store,
        alert: alert.name,
        topic: integrationTopic(req.integration),
        observation: { outcome: 'failing', status: 'segment_failed', runId: null, at: now },
        policy: { repeatAfterMs: policyMs, closeAfterQuietMs: policyMs },
        onSend: (sql, step) => {
          const reminder = step.send === 'reminder';
          const message = segmentMessage({
            alert: alert.name,
            kind: reminder ? 'reminder' : 'alert',
            integration: req.integration,
            connector: typeof integration?.connector === 'string' ? integration.connector : undefined,
            segment: {
              name: req.segment,
              ...(typeof segment?.id === 'number' ? { id: segment.id } : {}),
              ...(typeof segment?.name === 'string' ? { title: segment.name } : {}),
            },
            queryKind: req.kind,
            error: errorMessage(req.error),
            attempts: req.attempts,
            incident: reminder ? step.previous : null,
            now,
          });
          return enqueue({ sql, alert, message, now });
        },
      });
      if (!sent) continue;
      // Only trouble is reported: the segment queue logs what it is told as warnings.
      const result = await deliverQueued({ store: req.store, queued: sent, configDir: req.configDir });
      for (const line of result.undelivered) log(line);
    } catch (e) {
      log(`warning: alert ${alert.name} on segment integration ${req.integration}: ${errorMessage(e)}`);
    }
  }
}
