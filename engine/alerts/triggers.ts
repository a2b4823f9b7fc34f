import type { RunStatus } from '../sync/types.js';
import type { AppliedAlert } from './types.js';

/** The run statuses an alert can be triggered by (`on: [failed, partial_success]`). */
export const RUN_TRIGGERS: readonly RunStatus[] = ['failed', 'partial_success'];

/** The resource address an incident is kept for. */
export const mappingTopic = (mapping: string) => `mapping.${mapping}`;
export const integrationTopic = (integration: string) => `segment_integration.${integration}`;

/**
 * The alerts that watch runs of `mapping`: those triggered by a run status and whose `mappings`
 * scope (default: every mapping) names it. They hear about its recovery too.
 */
export function alertsForMapping(alerts: readonly AppliedAlert[], mapping: string): AppliedAlert[] {
  return alerts.filter(
    (a) =>
      a.body.on.some((t) => (RUN_TRIGGERS as readonly string[]).includes(t)) &&
      (a.body.mappings === undefined || a.body.mappings.includes(mapping)),
  );
}

/** True when a run with `status` is one the alert reports (`on` names it). */
export function isTriggeredBy(alert: AppliedAlert, status: RunStatus): boolean {
  return (alert.body.on as readonly string[]).includes(status);
}

/** The alerts triggered by a segment integration query that failed after its retries (`segment_failed`). */
export function alertsForIntegration(alerts: readonly AppliedAlert[], integration: string): AppliedAlert[] {
  return alerts.filter(
    (a) =>
      a.body.on.includes('segment_failed') &&
      (a.body.segment_integrations === undefined || a.body.segment_integrations.includes(integration)),
  );
}
