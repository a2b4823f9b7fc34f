/**
 * A lexical walk over template SQL that knows, at every `{`, whether it stands outside quotes,
 * inside a `'…'` or `"…"` literal, or inside a region whose contents cannot be escaped
 * (quoted identifiers, dollar quotes, raw and escape strings). Comments are skipped: a tag
 * inside a comment is comment text. The rules follow each server's own lexer, because a
 * scanner that disagrees with the server about where a literal ends would let a value escape it.
 */
import type { DialectName } from '../../providers/sdk.js';

/** Where a tag stands. */
export type Place =
  | { readonly kind: 'outside' }
  | { readonly kind: 'quote'; readonly quote: "'" | '"' }
  /** A region a value cannot be escaped for; `what` names it for the error message. */
  | { readonly kind: 'unsafe'; readonly what: string };

/** How a quoted region escapes its closing delimiter. */
type Escape = 'double' | 'backslash' | 'both' | 'none';

/** The lexical rules the scanner needs from a dialect. */
interface ScanRules {
  /** `\` escapes the next character inside `'…'` and `"…"` (and `` `…` ``). */
  readonly backslash: boolean;
  /** `--` starts a comment only before whitespace or a control character (MySQL). */
  readonly dashNeedsSpace: boolean;
  /** `#` comments: everywhere (MySQL, BigQuery) or only as `# ` / `#!` (ClickHouse). */
  readonly hash: 'none' | 'any' | 'space';
  /** `//` line comments (ClickHouse). */
  readonly slashSlash: boolean;
  /** Block comments nest (PostgreSQL, SQL Server, ClickHouse). */
  readonly nestedComments: boolean;
  /** `` `…` `` quoted identifiers, and how they escape a backtick. */
  readonly backtick: Escape | false;
  /** `[…]` quoted identifiers: none, ending at the first `]` (SQLite), or with `]]` doubled (SQL Server). */
  readonly brackets: 'none' | 'plain' | 'doubled';
  /** `$tag$…$tag$` strings (PostgreSQL, ClickHouse heredocs). */
  readonly dollarQuotes: boolean;
  /** PostgreSQL `E'…'` and `U&'…'` strings. */
  readonly pgPrefixes: boolean;
  /** BigQuery `'''…'''` and `"""…"""`, and raw `r'…'` strings. */
  readonly bigqueryStrings: boolean;
  /** Oracle `q'[…]'` alternative quoting. */
  readonly oracleQ: boolean;
}

const base: ScanRules = {
  backslash: false,
  dashNeedsSpace: false,
  hash: 'none',
  slashSlash: false,
  nestedComments: false,
  backtick: false,
  brackets: 'none',
  dollarQuotes: false,
  pgPrefixes: false,
  bigqueryStrings: false,
  oracleQ: false,
};

/** Keyed by dialect so that a new dialect does not compile until its rules are written. */
export const scanRules: Readonly<Record<DialectName, ScanRules>> = {
  sqlite: { ...base, backtick: 'double', brackets: 'plain' },
  postgres: { ...base, nestedComments: true, dollarQuotes: true, pgPrefixes: true },
  mysql: { ...base, backslash: true, dashNeedsSpace: true, hash: 'any', backtick: 'double' },
  mssql: { ...base, nestedComments: true, brackets: 'doubled' },
  oracle: { ...base, oracleQ: true },
  bigquery: { ...base, backslash: true, hash: 'any', backtick: 'backslash', bigqueryStrings: true },
  clickhouse: {
    ...base,
    backslash: true,
    hash: 'space',
    slashSlash: true,
    nestedComments: true,
    backtick: 'both',
    dollarQuotes: true,
  },
};

/** A region that was still open when the text ended. */
export interface Unterminated {
  readonly offset: number;
  readonly what: string;
}

/**
 * Calls `onTag(offset, place)` at each `{` that starts a tag (followed by `$` or a letter) outside
 * comments; `onTag` returns the offset where scanning resumes (after the tag). Returns the
 * region left open at the end of the text, if any.
 */
export function scanSql(
  text: string,
  dialect: DialectName,
  onTag: (offset: number, place: Place) => number,
): Unterminated | undefined {
  const rules = scanRules[dialect];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text[i]!;
    if (c === '{' && startsTag(text, i)) {
      i = Math.max(onTag(i, OUTSIDE), i + 1);
      continue;
    }
    const comment = commentEnd(text, i, rules);
    if (comment !== undefined) {
      if (comment < 0) return { offset: i, what: 'a /* comment */' };
      i = comment;
      continue;
    }
    const region = openRegion(text, i, rules);
    if (region === undefined) {
      i++;
      continue;
    }
    const end = scanRegion(text, region, onTag);
    if (end < 0)
      return {
        offset: i,
        what:
          region.place.kind === 'quote'
            ? `a ${region.place.quote}…${region.place.quote} literal`
            : region.what,
      };
    i = end;
  }
  return undefined;
}

const OUTSIDE: Place = { kind: 'outside' };

/** A tag starts with `{` followed by `$` or an ASCII letter; any other `{` is text (JSON, arrays). */
export function startsTag(text: string, i: number): boolean {
  const next = text[i + 1];
  return next !== undefined && /[$A-Za-z]/.test(next);
}

/** End of the comment starting at `i` (-1: never closed), or undefined when none starts there. */
function commentEnd(text: string, i: number, rules: ScanRules): number | undefined {
  const c = text[i];
  const next = text[i + 1];
  const lineComment =
    (c === '-' && next === '-' && (!rules.dashNeedsSpace || /^[\s\x00-\x1f]?$/.test(text[i + 2] ?? ''))) ||
    (c === '#' && (rules.hash === 'any' || (rules.hash === 'space' && (next === ' ' || next === '!')))) ||
    (c === '/' && next === '/' && rules.slashSlash);
  if (lineComment) {
    const nl = text.indexOf('\n', i);
    return nl < 0 ? text.length : nl + 1;
  }
  if (c !== '/' || next !== '*') return undefined;
  let depth = 1;
  let j = i + 2;
  while (j < text.length) {
    if (text.startsWith('*/', j)) {
      j += 2;
      if (--depth === 0) return j;
    } else if (rules.nestedComments && text.startsWith('/*', j)) {
      j += 2;
      depth++;
    } else j++;
  }
  return -1;
}

interface Region {
  /** Offset of the first character inside the region. */
  readonly body: number;
  readonly close: string;
  readonly escape: Escape;
  readonly place: Place;
  readonly what: string;
}

const isWord = (c: string | undefined): boolean => c !== undefined && /[\w$\u0080-\uffff]/.test(c);

/** The quoted region opening at `i`, if one does. */
function openRegion(text: string, i: number, rules: ScanRules): Region | undefined {
  const c = text[i]!;
  const quoteEscape: Escape = rules.backslash ? 'both' : 'double';
  if (c === "'" || c === '"') {
    const unsafe = prefixedString(text, i, rules);
    if (unsafe) return unsafe;
    if (rules.bigqueryStrings && text.startsWith(c.repeat(3), i)) {
      return {
        body: i + 3,
        close: c.repeat(3),
        escape: 'backslash',
        place: { kind: 'quote', quote: c },
        what: '',
      };
    }
    return { body: i + 1, close: c, escape: quoteEscape, place: { kind: 'quote', quote: c }, what: '' };
  }
  if (c === '`' && rules.backtick) {
    const what = 'a `…` quoted identifier';
    return { body: i + 1, close: '`', escape: rules.backtick, place: { kind: 'unsafe', what }, what };
  }
  if (c === '[' && rules.brackets !== 'none') {
    const what = 'a […] quoted identifier';
    const esc = rules.brackets === 'doubled' ? 'double' : 'none';
    return { body: i + 1, close: ']', escape: esc, place: { kind: 'unsafe', what }, what };
  }
  if (c === '$' && rules.dollarQuotes && !isWord(text[i - 1])) {
    const m = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 256));
    if (m) {
      const what = 'a dollar-quoted string';
      return { body: i + m[0].length, close: m[0], escape: 'none', place: { kind: 'unsafe', what }, what };
    }
  }
  return undefined;
}

/** Strings whose prefix changes how their contents are read: E'…', U&'…', r'…', q'[…]'. */
function prefixedString(text: string, i: number, rules: ScanRules): Region | undefined {
  const q = text[i]!;
  const before = (k: number) => text[i - k];
  const unsafe = (body: number, close: string, esc: Escape, what: string): Region => ({
    body,
    close,
    escape: esc,
    place: { kind: 'unsafe', what },
    what,
  });
  if (rules.pgPrefixes) {
    if (q === "'" && /[Ee]/.test(before(1) ?? '') && !isWord(before(2)))
      return unsafe(i + 1, "'", 'both', "an E'…' string");
    if (before(1) === '&' && /[Uu]/.test(before(2) ?? '') && !isWord(before(3)))
      return unsafe(i + 1, q, 'double', `a U&${q}…${q} string`);
  }
  if (rules.bigqueryStrings) {
    const raw = /[Rr]/.test(before(1) ?? '')
      ? !isWord(before(2)) || (/[Bb]/.test(before(2) ?? '') && !isWord(before(3)))
      : /[Bb]/.test(before(1) ?? '') && /[Rr]/.test(before(2) ?? '') && !isWord(before(3));
    if (raw) {
      const triple = text.startsWith(q.repeat(3), i);
      return unsafe(i + (triple ? 3 : 1), triple ? q.repeat(3) : q, 'backslash', 'a raw string');
    }
  }
  if (rules.oracleQ && q === "'" && /[Qq]/.test(before(1) ?? '')) {
    const nq = /[Nn]/.test(before(2) ?? '');
    if (!isWord(before(nq ? 3 : 2)) && i + 1 < text.length) {
      const open = text[i + 1]!;
      const close = ({ '[': ']', '{': '}', '(': ')', '<': '>' } as Record<string, string>)[open] ?? open;
      return unsafe(i + 2, `${close}'`, 'none', "a q'…' string");
    }
  }
  return undefined;
}

/** Scans a region's body, reporting tags in it; returns the offset after its close, or -1. */
function scanRegion(text: string, r: Region, onTag: (offset: number, place: Place) => number): number {
  let j = r.body;
  while (j < text.length) {
    const c = text[j]!;
    if (c === '{' && startsTag(text, j)) {
      j = Math.max(onTag(j, r.place), j + 1);
    } else if (c === '\\' && (r.escape === 'backslash' || r.escape === 'both')) {
      j += 2;
    } else if (text.startsWith(r.close, j)) {
      if ((r.escape === 'double' || r.escape === 'both') && text[j + 1] === r.close) j += 2;
      else return j + r.close.length;
    } else j++;
  }
  return -1;
}
