/** A batch's contents and its rendered query: the profiles its slices hold, rendered through the integration's template. */
import { errorMessage, UserError } from '../errors.js';
import type { BatchRow } from './batches.js';
import type { Slice } from './batching.js';
import { dialects } from './dialects.js';
import { type EventRow, rowProfiles } from './queue.js';
import { queryOf, type ResolvedIntegration } from './resolve.js';
import { parseTemplate, renderTemplate, type Template } from './template.js';
import { isProfileKind, type Profile } from './types.js';

/** What a batch holds. */
export interface BatchContents {
  /** The profiles of an add/remove batch, in order (empty for other kinds). */
  readonly profiles: readonly Profile[];
  /** The segment as it was when the batch's first event happened. */
  readonly segment: { readonly id: number; readonly name: string };
}

/** The rendered query, or why there is none. */
export type BatchQuery = { readonly sql: string } | { readonly skip: string } | { readonly error: string };

/** A batch's profiles (in slice order) and the segment as its first row recorded it. */
export function contents(rows: readonly EventRow[], slices: readonly Slice[]): BatchContents {
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  const profiles: Profile[] = [];
  for (const s of slices) {
    const row = bySeq.get(s.seq);
    if (row) profiles.push(...rowProfiles(row).slice(s.from, s.to));
  }
  const first = bySeq.get(slices[0]?.seq ?? -1);
  return { profiles, segment: { id: first?.segmentId ?? 0, name: first?.segmentName ?? '' } };
}

/** Renders batches, parsing each integration's template once. */
export class BatchRenderer {
  private readonly templates = new Map<string, Template>();

  /** The batch's query; a query removed since, a template or a value that cannot render is data, not a throw. */
  query(integration: ResolvedIntegration, batch: BatchRow, c: BatchContents): BatchQuery {
    const text = queryOf(integration, batch.kind);
    // The query was removed from the integration after the event was queued: nothing can run it.
    if (!text)
      return {
        skip: `not run: segment_integration.${integration.name} no longer has a \`${batch.kind}\` query`,
      };
    if (isProfileKind(batch.kind) && c.profiles.length === 0)
      return { skip: 'not run: the batch holds no profiles' };
    try {
      const dialect = dialects[integration.dialect];
      return {
        sql: renderTemplate({
          template: this.template(integration, batch, text),
          dialect,
          segment: c.segment,
          batch: c.profiles,
        }),
      };
    } catch (e) {
      return { error: errorMessage(e) };
    }
  }

  private template(integration: ResolvedIntegration, batch: BatchRow, text: string): Template {
    const cacheKey = `${integration.name}\u0000${batch.kind}\u0000${text}`;
    const cached = this.templates.get(cacheKey);
    if (cached) return cached;
    const parsed = parseTemplate(text, integration.dialect);
    if (!parsed.ok) {
      const e = parsed.errors[0]!;
      throw new UserError(
        `segment_integration.${integration.name}: query \`${batch.kind}\`, line ${e.line} column ${e.column}: ${e.message}`,
        { hint: 'fix the query and run `backflow apply`; the batch stays queued' },
      );
    }
    this.templates.set(cacheKey, parsed.template);
    return parsed.template;
  }
}
