import type { AfterRunContext } from '../sync/after-run.js';
import type { RunStatus } from '../sync/types.js';
import { appliedAlerts, repeatAfterMs } from './config.js';
import { deliverQueued, enqueue, retryDeliveries } from './deliver.js';
import { type Observation, observe } from './incidents.js';
import { runMessage } from './message.js';
import { alertsForMapping, isTriggeredBy, mappingTopic } from './triggers.js';
import type { AppliedAlert } from './types.js';

/**
 * The after-run subscriber: first retries deliveries that are due (so older messages go out
 * first), then moves each covering alert's incident for the mapping along, enqueues the message it
 * calls for (alert, reminder, recovered) in the same transaction, and makes the inline attempts.
 * Time is the run's finish time, so a run with an injected clock drives storm control with it.
 */
export async function alertsAfterRun(ctx: AfterRunContext): Promise<void> {
  const { run } = ctx;
  if (run.status === 'in_progress') return;
  const now = run.finished_at ? new Date(run.finished_at) : new Date();
  await retryDeliveries({ store: ctx.store, state: ctx.state, configDir: ctx.configDir, now, log: ctx.log });
  for (const alert of alertsForMapping(appliedAlerts(ctx.state), run.mapping)) {
    try {
      const { sent } = await observe({
        store: ctx.store,
        alert: alert.name,
        topic: mappingTopic(run.mapping),
        observation: { outcome: outcome(alert, run.status), status: run.status, runId: run.id, at: now },
        policy: { repeatAfterMs: repeatAfterMs(alert.body.repeat_after) },
        onSend: (sql, step) => {
          const message = runMessage({
            alert: alert.name,
            kind: step.send,
            run,
            incident: step.previous,
            now,
          });
          return enqueue({ sql, alert, message, now });
        },
      });
      if (!sent) continue;
      ctx.log((await deliverQueued({ store: ctx.store, queued: sent, configDir: ctx.configDir })).summary);
    } catch (e) {
      // One alert's trouble (its store rows, a bad body) does not keep the others from being told.
      ctx.log(`warning: alert ${alert.name} after run ${run.id}: ${(e as Error).message}`);
    }
  }
}

/** A status the alert is on is a failure; a success ends one; anything else changes nothing. */
function outcome(alert: AppliedAlert, status: RunStatus): Observation['outcome'] {
  if (isTriggeredBy(alert, status)) return 'failing';
  return status === 'success' ? 'ok' : 'neutral';
}
