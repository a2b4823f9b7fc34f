/**
 * Segment integrations: the public API the CLI and the agent call. Events (from apply, model
 * refreshes, the CLI and the agent's API) are stored durably in the runtime store, batched per
 * integration and segment, rendered through the integration's templates and run on its connector.
 */
export { MAX_ATTEMPTS } from './batching.js';
export {
  type EnqueueApplyEffectsRequest,
  type EnqueueApplyEffectsResult,
  enqueueApplyEffects,
} from './effects.js';
export {
  type EnqueueClearRequest,
  type EnqueueProfilesRequest,
  enqueueClear,
  enqueueProfiles,
  type ResyncRequest,
  resync,
} from './events.js';
export { type FlushRequest, flushDue } from './flush.js';
export { type RefreshRequest, refreshModelSegments } from './refresh.js';
export { type QueueDepthRequest, queueDepth, type SegmentStatsRequest, segmentStats } from './stats.js';
export type * from './types.js';
