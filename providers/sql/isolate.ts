/**
 * Isolating the records that fail a batch: split the batch until each failing record is alone
 * and rejected with the server's message, while every other record lands.
 */
import type { RecordResult } from '../sdk.js';

const OK: RecordResult = { status: 'ok' };

/** How a provider tells a record's failure from the batch's, and what the record's result is. */
export interface Isolation {
  /** A failure one record can cause (a value, a constraint); anything else propagates. */
  readonly isRecordError: (e: unknown) => boolean;
  /** The rejected result of the record that failed alone. */
  readonly rejection: (e: unknown) => RecordResult;
  /** Parts of at most this many records go record by record instead of in halves (0: always halves). */
  readonly singlesUpTo?: number;
}

/**
 * Runs `write` on all items; when it fails on a record-level error, splits the items in halves and
 * tries again until each failing record is alone and rejected with the server's message. Other
 * errors (the connection, the table) propagate. k bad records cost about 2·k·log2(n) statements.
 */
export async function bisect<T extends { readonly index: number }>(
  items: readonly T[],
  results: (RecordResult | undefined)[],
  write: (part: readonly T[]) => Promise<void>,
  how: Isolation,
): Promise<void> {
  const singlesUpTo = how.singlesUpTo ?? 4;
  const stack: (readonly T[])[] = [items];
  while (stack.length) {
    const part = stack.pop()!;
    try {
      await write(part);
      for (const it of part) results[it.index] = OK;
    } catch (e) {
      if (!how.isRecordError(e)) throw e;
      if (part.length === 1) {
        results[part[0]!.index] = how.rejection(e);
        continue;
      }
      // Small parts go record by record; larger ones in halves, the first half first.
      if (part.length <= singlesUpTo) for (let i = part.length - 1; i >= 0; i--) stack.push([part[i]!]);
      else {
        const mid = Math.ceil(part.length / 2);
        stack.push(part.slice(mid), part.slice(0, mid));
      }
    }
  }
}
