/**
 * Segment integration templates (Altcraft's syntax): `{segment_id}`, `{segment_name}`,
 * `{$lead.FIELD}`, `{$index}`, `{for $index, $lead = $batch} … {end}`, `{autocomma}`,
 * `{batch_in "FIELD"}`. Parsing records, for every tag, whether it stands outside quotes or
 * inside a `'…'` / `"…"` literal (template-scan.ts); rendering escapes each value for exactly
 * that place, so no value can end a literal or add a statement.
 */
import type { DialectName } from '../../providers/sdk.js';
import type { QuoteChar } from '../../providers/sql/dialect.js';
import { closest } from '../diagnostics.js';
import { type Place, scanSql } from './template-scan.js';

/** A template problem at a position inside the template text (1-based line and column). */
export interface TemplateError {
  readonly message: string;
  readonly hint?: string;
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

/**
 * Where a value is rendered: as a complete literal, escaped inside an existing quote, or (a
 * number tag inside a quoted identifier or other region without escapes) as bare digits.
 */
export type ValuePlace = 'outside' | QuoteChar | 'digits';

/** One piece of a parsed template. */
export type TemplateNode =
  | { readonly kind: 'text'; readonly text: string }
  | {
      readonly kind: 'segment_id' | 'segment_name' | 'index';
      readonly place: ValuePlace;
      readonly offset: number;
    }
  | { readonly kind: 'field'; readonly field: string; readonly place: ValuePlace; readonly offset: number }
  | { readonly kind: 'batch_in'; readonly field: string; readonly offset: number }
  | { readonly kind: 'autocomma'; readonly offset: number }
  | { readonly kind: 'loop'; readonly body: readonly TemplateNode[]; readonly offset: number };

/** A parsed template, bound to the dialect whose quoting rules it was scanned with. */
export interface Template {
  readonly dialect: DialectName;
  readonly source: string;
  readonly nodes: readonly TemplateNode[];
}

export type ParseResult = { ok: true; template: Template } | { ok: false; errors: TemplateError[] };

const FIELD = '[A-Za-z_][A-Za-z0-9_]*';
const LOOP = /^for\s+\$index\s*,\s*\$lead\s*=\s*\$batch$/;
const LEAD = new RegExp(`^\\$lead\\.(${FIELD})$`);
const BATCH_IN = new RegExp(`^batch_in\\s+(?:"(${FIELD})"|'(${FIELD})')$`);
/** Each tag's leading word and its full form, for "did you mean" hints. */
const TAG_FORMS: Readonly<Record<string, string>> = {
  segment_id: '{segment_id}',
  segment_name: '{segment_name}',
  $lead: '{$lead.FIELD}',
  $index: '{$index}',
  for: '{for $index, $lead = $batch}',
  end: '{end}',
  autocomma: '{autocomma}',
  batch_in: '{batch_in "FIELD"}',
};
const LOOP_FORM = '{for $index, $lead = $batch} … {end}';

/** A tag as read from the text, before loops are matched. */
type Token =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'for' | 'end'; readonly offset: number; readonly place: Place }
  | Exclude<TemplateNode, { kind: 'text' } | { kind: 'loop' }>;

/** Parses template text for a dialect; every problem found is returned, with its position. */
export function parseTemplate(text: string, dialect: DialectName): ParseResult {
  const problems: { offset: number; message: string; hint?: string }[] = [];
  const tokens: Token[] = [];
  let last = 0;
  const unterminated = scanSql(text, dialect, (offset, place) => {
    const close = tagEnd(text, offset);
    if (close < 0) {
      problems.push({
        offset,
        message:
          'unclosed tag: `{` followed by a letter or `$` starts a tag, and no `}` follows on this line',
      });
      return offset + 1;
    }
    const token = readTag(text.slice(offset + 1, close).trim(), offset, place, problems);
    // A `{for}` or `{end}` alone on its line takes the line with it, so loops leave no blank lines.
    const line =
      token && (token.kind === 'for' || token.kind === 'end') && place.kind === 'outside'
        ? standaloneLine(text, offset, close)
        : undefined;
    const textEnd = line ? Math.max(last, line.start) : offset;
    if (textEnd > last) tokens.push({ kind: 'text', text: text.slice(last, textEnd) });
    if (token) tokens.push(token);
    last = line ? line.end : close + 1;
    return last;
  });
  if (last < text.length) tokens.push({ kind: 'text', text: text.slice(last) });
  if (unterminated) {
    problems.push({
      offset: unterminated.offset,
      message: `${unterminated.what} starting here is never closed`,
      hint: 'values are escaped by where they stand, so the quoting of the template must be complete',
    });
  }
  const nodes = buildTree(tokens, problems);
  if (problems.length > 0) {
    problems.sort((a, b) => a.offset - b.offset);
    return { ok: false, errors: problems.map((p) => ({ ...p, ...position(text, p.offset) })) };
  }
  return { ok: true, template: { dialect, source: text, nodes } };
}

/** The line around a tag when nothing but whitespace shares it: its start, and the offset after its newline. */
function standaloneLine(
  text: string,
  open: number,
  close: number,
): { start: number; end: number } | undefined {
  const start = text.lastIndexOf('\n', open - 1) + 1;
  const nl = text.indexOf('\n', close);
  const end = nl < 0 ? text.length : nl + 1;
  const blank = /^[ \t]*$/;
  if (
    !blank.test(text.slice(start, open)) ||
    !blank.test(text.slice(close + 1, nl < 0 ? end : nl).replace(/\r$/, ''))
  ) {
    return undefined;
  }
  return { start, end };
}

/** Offset of the `}` closing the tag opened at `offset`, or -1 when the line or text ends first. */
function tagEnd(text: string, offset: number): number {
  for (let j = offset + 1; j < text.length; j++) {
    const c = text[j];
    if (c === '}') return j;
    if (c === '\n' || c === '{') return -1;
  }
  return -1;
}

/** Classifies one tag's inner text; problems are pushed, and null returned, for a bad tag. */
function readTag(
  inner: string,
  offset: number,
  place: Place,
  problems: { offset: number; message: string; hint?: string }[],
): Token | null {
  const fail = (message: string, hint?: string): null => {
    problems.push(hint === undefined ? { offset, message } : { offset, message, hint });
    return null;
  };
  const valuePlace = (digitsOnly = false): ValuePlace | null => {
    if (place.kind === 'outside') return 'outside';
    if (place.kind === 'quote') return place.quote;
    // Digits need no escaping anywhere: `seg_{segment_id}` inside a quoted identifier is fine.
    if (digitsOnly) return 'digits';
    return fail(
      `\`{${inner}}\` stands inside ${place.what}, where a value cannot be escaped`,
      "put the value in a plain '…' literal, or outside quotes",
    );
  };
  if (inner === 'for' || inner.startsWith('for ')) {
    if (!LOOP.test(inner)) return fail(`malformed loop tag \`{${inner}}\``, `write \`${TAG_FORMS.for}\``);
    return { kind: 'for', offset, place };
  }
  if (inner === 'end') return { kind: 'end', offset, place };
  if (inner === 'autocomma') return { kind: 'autocomma', offset };
  if (inner === 'segment_id' || inner === 'segment_name' || inner === '$index') {
    const p = valuePlace(inner !== 'segment_name');
    const kind = inner === '$index' ? 'index' : inner;
    return p === null ? null : { kind, place: p, offset };
  }
  const lead = LEAD.exec(inner);
  if (lead) {
    const p = valuePlace();
    return p === null ? null : { kind: 'field', field: lead[1]!, place: p, offset };
  }
  if (inner === '$lead' || inner.startsWith('$lead.')) {
    return fail(
      `\`{${inner}}\` needs a profile field name`,
      'write `{$lead.FIELD}`, e.g. `{$lead.CustomID}`',
    );
  }
  if (inner === 'batch_in' || inner.startsWith('batch_in ')) {
    const m = BATCH_IN.exec(inner);
    if (!m)
      return fail(
        `malformed \`{${inner}}\``,
        `write \`${TAG_FORMS.batch_in}\`, e.g. \`{batch_in "CustomID"}\``,
      );
    if (place.kind !== 'outside') {
      return fail(
        '`{batch_in}` renders a list of literals and cannot stand inside a quoted literal or identifier',
        `remove the quotes around it: \`IN ({batch_in "${m[1] ?? m[2]}"})\``,
      );
    }
    return { kind: 'batch_in', field: (m[1] ?? m[2])!, offset };
  }
  return fail(`unknown tag \`{${inner}}\``, unknownTagHint(inner));
}

function unknownTagHint(inner: string): string {
  const head = /^[$\w]+/.exec(inner)?.[0] ?? inner;
  const match = closest(head, Object.keys(TAG_FORMS));
  if (match !== undefined) {
    const form =
      match === '$lead' && inner.includes('.')
        ? `{$lead${inner.slice(inner.indexOf('.'))}}`
        : TAG_FORMS[match];
    return `did you mean \`${form}\`?`;
  }
  return `tags are ${Object.values(TAG_FORMS)
    .map((f) => `\`${f}\``)
    .join(', ')}; any other \`{\` must not be followed by a letter or \`$\``;
}

/** Matches `{for}` with `{end}` and checks which tags need a loop. */
function buildTree(
  tokens: readonly Token[],
  problems: { offset: number; message: string; hint?: string }[],
): TemplateNode[] {
  const top: TemplateNode[] = [];
  let loop: { offset: number; place: Place; body: TemplateNode[] } | undefined;
  for (const t of tokens) {
    switch (t.kind) {
      case 'for':
        if (loop) {
          problems.push({
            offset: t.offset,
            message: 'loops cannot be nested',
            hint: `close the first loop with \`{end}\` before opening another: \`${LOOP_FORM}\``,
          });
        } else loop = { offset: t.offset, place: t.place, body: [] };
        break;
      case 'end':
        if (!loop) {
          problems.push({
            offset: t.offset,
            message: '`{end}` without a loop to close',
            hint: `loops are \`${LOOP_FORM}\``,
          });
          break;
        }
        if (!samePlace(loop.place, t.place)) {
          problems.push({
            offset: t.offset,
            message: 'the loop body opens or closes a quote without balancing it',
            hint: 'each iteration repeats the body, so the quotes in it must open and close inside it',
          });
        }
        top.push({ kind: 'loop', body: loop.body, offset: loop.offset });
        loop = undefined;
        break;
      case 'text':
        (loop?.body ?? top).push(t);
        break;
      default:
        if (!loop && (t.kind === 'field' || t.kind === 'index' || t.kind === 'autocomma')) {
          const name =
            t.kind === 'field' ? `{$lead.${t.field}}` : t.kind === 'index' ? '{$index}' : '{autocomma}';
          problems.push({
            offset: t.offset,
            message: `\`${name}\` is only valid inside a loop`,
            hint: `put it between \`${TAG_FORMS.for}\` and \`{end}\``,
          });
        }
        (loop?.body ?? top).push(t);
    }
  }
  if (loop) {
    problems.push({
      offset: loop.offset,
      message: 'this loop is never closed',
      hint: 'add `{end}` after the loop body',
    });
  }
  return top;
}

function samePlace(a: Place, b: Place): boolean {
  if (a.kind === 'quote' && b.kind === 'quote') return a.quote === b.quote;
  return a.kind === b.kind && (a.kind !== 'unsafe' || (b.kind === 'unsafe' && a.what === b.what));
}

/** 1-based line and column (in UTF-16 code units) of an offset. */
function position(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/** The profile fields a template reads (`{$lead.X}` and `{batch_in "X"}`), in order of first use. */
export function templateFields(t: Template): string[] {
  const fields = new Set<string>();
  const walk = (nodes: readonly TemplateNode[]): void => {
    for (const n of nodes) {
      if (n.kind === 'field' || n.kind === 'batch_in') fields.add(n.field);
      else if (n.kind === 'loop') walk(n.body);
    }
  };
  walk(t.nodes);
  return [...fields];
}

export { type Profile, type RenderRequest, renderTemplate } from './template-render.js';
