/**
 * Rendering of a parsed segment template for one batch: each value escaped for the place the
 * parser recorded for it (template.ts), and never glued to text that would change how the
 * server reads it.
 */
import type { SqlDialect } from '../../providers/sql/dialect.js';
import { valueText } from '../../providers/sql/dialect.js';
import { BugError } from '../errors.js';
import type { Template, TemplateNode, ValuePlace } from './template.js';

/** A profile as the queue holds it: field name → value. */
export type Profile = Readonly<Record<string, unknown>>;

export interface RenderRequest {
  readonly template: Template;
  /** Must be the dialect the template was parsed for. */
  readonly dialect: SqlDialect;
  readonly segment: { readonly id: number; readonly name: string };
  readonly batch: readonly Profile[];
}

/**
 * Renders a template for one batch. Outside quotes a value is a complete literal (`literal()`);
 * inside a quote it is escaped for that quote (a missing value is empty text there).
 * `{batch_in}` of an empty batch renders `NULL`, so `IN (NULL)` matches nothing.
 */
export function renderTemplate(req: RenderRequest): string {
  const { template, dialect, segment, batch } = req;
  if (dialect.name !== template.dialect) {
    throw new BugError(`template parsed for ${template.dialect} rendered with the ${dialect.name} dialect`);
  }
  const out = new Output();
  const value = (v: unknown, place: ValuePlace): void => {
    if (place === 'outside') out.literal(dialect.literal(v));
    else if (place === 'digits') {
      if (!Number.isSafeInteger(v))
        throw new BugError(`expected an integer for a digits-only tag, got ${String(v)}`);
      out.push(String(v));
    } else out.push(dialect.escapeInQuote(valueText(v) ?? '', place));
  };
  const emit = (
    nodes: readonly TemplateNode[],
    lead: Profile | undefined,
    index: number,
    lastIndex: boolean,
  ): void => {
    for (const n of nodes) {
      switch (n.kind) {
        case 'text':
          out.push(n.text);
          break;
        case 'segment_id':
          value(segment.id, n.place);
          break;
        case 'segment_name':
          value(segment.name, n.place);
          break;
        case 'index':
          value(index, n.place);
          break;
        case 'field':
          value(lead && Object.hasOwn(lead, n.field) ? lead[n.field] : undefined, n.place);
          break;
        case 'autocomma':
          if (!lastIndex) out.push(',');
          break;
        case 'batch_in':
          out.literal(
            batch.length === 0
              ? 'NULL'
              : batch
                  .map((p) => dialect.literal(Object.hasOwn(p, n.field) ? p[n.field] : undefined))
                  .join(', '),
          );
          break;
        case 'loop':
          for (const [i, p] of batch.entries()) emit(n.body, p, i, i === batch.length - 1);
          break;
        default: {
          const never: never = n;
          throw new BugError(`unknown template node ${JSON.stringify(never)}`);
        }
      }
    }
  };
  emit(template.nodes, undefined, 0, true);
  return out.text();
}

/** Rendered text, keeping the last character so a literal is never glued to its neighbours. */
class Output {
  private readonly parts: string[] = [];
  private last = '';
  private afterLiteral = false;

  push(s: string): void {
    if (s === '') return;
    // `'a'` then the template's own `'…'` would read as one literal with a doubled quote.
    if (this.afterLiteral && /^['"`]/.test(s) && this.last === s[0]) this.parts.push(' ');
    this.parts.push(s);
    this.last = s[s.length - 1]!;
    this.afterLiteral = false;
  }

  /**
   * Appends a literal standing outside quotes. A space goes in front where gluing would change
   * how the server reads it: `E'…'` (a PostgreSQL escape string), `x'…'`, `''…'` (a doubled
   * quote), or `-` then `-5` (a `--` comment).
   */
  literal(s: string): void {
    const first = s[0] ?? '';
    const glue =
      (/[A-Za-z0-9_$'"`\]]/.test(this.last) && /[A-Za-z_'"]/.test(first)) ||
      (this.last === '-' && first === '-') ||
      (this.last === '/' && first === '*');
    if (glue) this.push(' ');
    this.push(s);
    this.afterLiteral = true;
  }

  text(): string {
    return this.parts.join('');
  }
}
