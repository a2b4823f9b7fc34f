/**
 * Events into the durable queue: profiles added and removed, a segment cleared, a segment resent
 * whole. Each call stores its events and the new membership in one transaction before it returns,
 * so an acknowledged event is never lost.
 */
import { UserError } from '../errors.js';
import type { StateDocument } from '../state/types.js';
import type { StoreSql } from '../store/sql.js';
import type { RuntimeStore } from '../store/types.js';
import { catchUpApplyEffects } from './effects.js';
import {
  clearMembers,
  getMembers,
  memberCount,
  pageMembers,
  removeMembers,
  upsertMembers,
} from './membership.js';
import { profileShaper, type StoredProfile } from './profiles.js';
import { type EventGroup, insertEvent, insertProfileEvents } from './queue.js';
import {
  integrationsFor,
  queryOf,
  type ResolvedIntegration,
  type ResolvedSegment,
  resolveSegment,
} from './resolve.js';
import type { EnqueueResult, Profile, ProfileEventKind } from './types.js';

export interface EnqueueProfilesRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly segment: string;
  readonly kind: ProfileEventKind;
  /** Each must hold the segment's key field; a managed segment keeps the key and its declared `fields`. */
  readonly profiles: readonly Profile[];
  readonly now?: Date;
}

/** Queues profiles added to or removed from a managed segment, on every integration in its scope. */
export async function enqueueProfiles(req: EnqueueProfilesRequest): Promise<EnqueueResult> {
  const segment = managedSegment(req.state, req.segment, req.kind);
  const problems: string[] = [];
  const byKey = new Map<string, StoredProfile>();
  const shape = profileShaper(segment.body);
  req.profiles.forEach((raw, i) => {
    const p = shape(raw);
    if (typeof p === 'string') problems.push(`profile ${i + 1} ${p}`);
    else byKey.set(p.key, p);
  });
  if (problems.length)
    throw new UserError(
      `cannot queue ${req.kind} events for segment ${segment.name}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`,
      {
        hint: `every profile needs the key field "${segment.body.key}"`,
      },
    );
  const integrations = integrationsFor(req.state, segment.name);
  await catchUpApplyEffects(req);
  const now = (req.now ?? new Date()).toISOString();
  const profiles = [...byKey.values()];
  const events = await req.store.sql.transaction(async (tx) => {
    let sent = profiles;
    if (req.kind === 'add') await upsertMembers(tx, { segment: segment.name, profiles, now });
    else {
      // A removed profile renders with what the segment knew of it, overlaid with what was submitted.
      const known = await getMembers(
        tx,
        segment.name,
        profiles.map((p) => p.key),
      );
      sent = profiles.map((p) => {
        const m = known.get(p.key);
        if (!m) return p;
        const profile = { ...m.profile, ...(JSON.parse(p.json) as Profile) };
        return { key: p.key, json: JSON.stringify(profile), hash: p.hash };
      });
      await removeMembers(
        tx,
        segment.name,
        profiles.map((p) => p.key),
      );
    }
    return queueProfileEvents(tx, { segment, integrations, kind: req.kind, profiles: sent, now });
  });
  return {
    segment: segment.name,
    kind: req.kind,
    profiles: profiles.length,
    integrations: integrations.map((i) => i.name),
    events,
  };
}

export interface EnqueueClearRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly segment: string;
  readonly now?: Date;
}

/**
 * Empties a managed segment: integrations with a `clear` query get a clear event; those without
 * one get a remove event for every current member, so their table empties too.
 */
export async function enqueueClear(req: EnqueueClearRequest): Promise<EnqueueResult> {
  const segment = managedSegment(req.state, req.segment, 'clear');
  const integrations = integrationsFor(req.state, segment.name);
  await catchUpApplyEffects(req);
  const now = (req.now ?? new Date()).toISOString();
  let members = 0;
  const events = await req.store.sql.transaction(async (tx) => {
    let n = 0;
    for (const integration of integrations) {
      if (queryOf(integration, 'clear')) {
        await insertEvent(tx, group(segment, integration, 'clear', now));
        n++;
        continue;
      }
      for await (const page of pageMembers(tx, { segment: segment.name })) {
        n += await queueProfileEvents(tx, {
          segment,
          integrations: [integration],
          kind: 'remove',
          profiles: page,
          now,
        });
      }
    }
    members = await memberCount(tx, segment.name);
    await clearMembers(tx, segment.name);
    return n;
  });
  return {
    segment: segment.name,
    kind: 'clear',
    profiles: members,
    integrations: integrations.map((i) => i.name),
    events,
  };
}

export interface ResyncRequest {
  readonly store: RuntimeStore;
  readonly state: StateDocument | null;
  readonly segment: string;
  /** Only this integration (default: every integration in the segment's scope). */
  readonly integration?: string;
  readonly now?: Date;
}

/**
 * Re-sends a segment's whole current membership: a clear event where the integration has a
 * `clear` query, then an add event for every member (in key order), in one transaction so no
 * other event lands between them.
 */
export async function resync(req: ResyncRequest): Promise<EnqueueResult> {
  const segment = resolveSegment(req.state, req.segment);
  let integrations = integrationsFor(req.state, segment.name);
  if (req.integration !== undefined) {
    integrations = integrations.filter((i) => i.name === req.integration);
    if (integrations.length === 0)
      throw new UserError(`segment integration ${req.integration} does not cover segment ${segment.name}`, {
        hint: `integrations covering it: ${
          integrationsFor(req.state, segment.name)
            .map((i) => i.name)
            .join(', ') || 'none'
        }`,
      });
  }
  await catchUpApplyEffects(req);
  const now = (req.now ?? new Date()).toISOString();
  let members = 0;
  const events = await req.store.sql.transaction(async (tx) => {
    let n = 0;
    for (const integration of integrations)
      if (queryOf(integration, 'clear')) {
        await insertEvent(tx, group(segment, integration, 'clear', now));
        n++;
      }
    for await (const page of pageMembers(tx, { segment: segment.name })) {
      members += page.length;
      n += await queueProfileEvents(tx, { segment, integrations, kind: 'add', profiles: page, now });
    }
    return n;
  });
  return {
    segment: segment.name,
    kind: 'resync',
    profiles: members,
    integrations: integrations.map((i) => i.name),
    events,
  };
}

/** Stores one event per integration and profile; returns how many. */
export async function queueProfileEvents(
  sql: StoreSql,
  req: {
    segment: ResolvedSegment;
    integrations: readonly ResolvedIntegration[];
    kind: ProfileEventKind;
    profiles: readonly Pick<StoredProfile, 'key' | 'json'>[];
    now: string;
  },
): Promise<number> {
  if (req.profiles.length === 0) return 0;
  for (const integration of req.integrations)
    await insertProfileEvents(sql, group(req.segment, integration, req.kind, req.now), req.profiles);
  return req.integrations.length * req.profiles.length;
}

function group(
  segment: ResolvedSegment,
  integration: ResolvedIntegration,
  kind: EventGroup['kind'],
  now: string,
): EventGroup {
  return {
    integration: integration.name,
    segment: segment.name,
    kind,
    segmentId: segment.body.id,
    segmentName: segment.body.name,
    enqueuedAt: now,
  };
}

/** Profile events and clears come from the CLI and the agent's API only for `members: managed`. */
export function managedSegment(state: StateDocument | null, name: string, what: string): ResolvedSegment {
  const segment = resolveSegment(state, name);
  if (segment.body.members !== 'managed') {
    const model = typeof segment.body.members === 'object' ? segment.body.members.model : '?';
    throw new UserError(
      `segment ${name} takes its members from model ${model}, so profiles cannot be ${what === 'clear' ? 'cleared' : what === 'add' ? 'added' : 'removed'} by hand`,
      {
        hint: `run \`backflow segments refresh ${name}\` to bring it up to date with the model, or set \`members: managed\``,
      },
    );
  }
  return segment;
}
