/**
 * Profiles from a file (`segments add|remove SEGMENT --file F`): JSON Lines (one object per line)
 * or CSV (a header row naming the fields, RFC 4180 quoting, a field may span lines). Read as a
 * stream, so a file of millions of profiles never sits in memory; each profile carries the line it
 * starts on, for error messages.
 */
import { createReadStream } from 'node:fs';
import { basename, extname } from 'node:path';
import { createInterface } from 'node:readline';
import { UserError } from '../errors.js';
import type { Profile } from './types.js';

export type ProfileFileFormat = 'jsonl' | 'csv';

/** A profile and the (1-based) line of the file it starts on. */
export interface LineProfile {
  readonly line: number;
  readonly profile: Profile;
}

/** A line that is not a profile. */
export interface LineProblem {
  readonly line: number;
  readonly message: string;
}

export type FileItem = LineProfile | LineProblem;

/** The format a file name implies (`.csv`; `.jsonl`, `.ndjson`, `.json`), or undefined. */
export function formatOf(path: string): ProfileFileFormat | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  return undefined;
}

/** Every profile (or problem) of a file, in file order. */
export function readProfiles(req: { path: string; format?: ProfileFileFormat }): AsyncIterable<FileItem> {
  const format = req.format ?? formatOf(req.path);
  if (!format)
    throw new UserError(`cannot tell the format of ${basename(req.path)} from its name`, {
      hint: 'name it .jsonl or .csv, or pass --format jsonl|csv',
    });
  return format === 'csv' ? readCsv(req.path) : readJsonl(req.path);
}

async function* readJsonl(path: string): AsyncIterable<FileItem> {
  const lines = createInterface({ input: open(path), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const raw of lines) {
    line++;
    const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      yield { line, message: `not valid JSON (${(e as Error).message})` };
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      yield {
        line,
        message: `expected a JSON object, found ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
      };
    else yield { line, profile: value as Profile };
  }
}

function open(path: string) {
  const stream = createReadStream(path, { encoding: 'utf8' });
  return stream;
}

/** One CSV cell: its text and whether it was quoted (an unquoted empty cell is a missing value). */
interface Cell {
  readonly text: string;
  readonly quoted: boolean;
}

async function* readCsv(path: string): AsyncIterable<FileItem> {
  let header: string[] | undefined;
  for await (const record of csvRecords(path)) {
    if ('message' in record) {
      yield record;
      return;
    }
    if (record.cells.length === 1 && record.cells[0]!.text === '' && !record.cells[0]!.quoted) continue;
    if (!header) {
      header = record.cells.map((c) => c.text.trim());
      const seen = new Set<string>();
      for (const h of header) {
        if (h === '') yield { line: record.line, message: 'the header row has an empty field name' };
        else if (seen.has(h)) yield { line: record.line, message: `the header row names "${h}" twice` };
        seen.add(h);
      }
      continue;
    }
    if (record.cells.length !== header.length) {
      yield {
        line: record.line,
        message: `${record.cells.length} fields, but the header row has ${header.length}`,
      };
      continue;
    }
    const profile: Record<string, unknown> = {};
    header.forEach((h, i) => {
      const c = record.cells[i]!;
      profile[h] = c.text === '' && !c.quoted ? null : c.text;
    });
    yield { line: record.line, profile };
  }
}

/** RFC 4180 records with the line each starts on; a quote left open at the end is a problem. */
async function* csvRecords(path: string): AsyncIterable<{ line: number; cells: Cell[] } | LineProblem> {
  let cells: Cell[] = [];
  let text = '';
  let quoted = false;
  let inQuotes = false;
  let pendingQuote = false; // saw `"` inside quotes: an escaped quote or the end of the field
  let line = 1;
  let start = 1;
  let first = true;
  let pendingCr = false;
  const endCell = () => {
    cells.push({ text, quoted });
    text = '';
    quoted = false;
  };
  for await (const chunk of open(path)) {
    let s = chunk as string;
    if (first) {
      s = s.replace(/^\uFEFF/, '');
      first = false;
    }
    for (const c of s) {
      if (pendingCr) {
        pendingCr = false;
        if (c === '\n') continue;
      }
      if (inQuotes) {
        if (pendingQuote) {
          pendingQuote = false;
          if (c === '"') {
            text += '"';
            continue;
          }
          inQuotes = false; // the closing quote: fall through to read `c` outside quotes
        } else {
          if (c === '"') pendingQuote = true;
          else {
            if (c === '\n') line++;
            text += c;
          }
          continue;
        }
      }
      if (c === '"' && text === '' && !quoted) {
        inQuotes = true;
        quoted = true;
      } else if (c === ',') endCell();
      else if (c === '\n' || c === '\r') {
        endCell();
        yield { line: start, cells };
        cells = [];
        line++;
        start = line;
        pendingCr = c === '\r';
      } else text += c;
    }
  }
  if (inQuotes && !pendingQuote) {
    yield { line: start, message: 'a quoted field is never closed' };
    return;
  }
  if (text !== '' || quoted || cells.length > 0) {
    endCell();
    yield { line: start, cells };
  }
}
