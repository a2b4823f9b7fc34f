import type { RunError } from './types.js';

/** What a person should do about each kind of record failure: the seed's "recommended action". */
const RECOMMENDED: Record<string, string> = {
  null_primary_key:
    'the model returned rows whose primary key is NULL: filter them out in the model (WHERE key IS NOT NULL) or fix the data',
  missing_primary_key:
    "the model's query does not return its primary_key column: add it to the SELECT or fix `primary_key`",
  duplicate_primary_key:
    'the model returned the same primary key more than once: make the key unique (GROUP BY / DISTINCT ON) or choose another primary_key',
  missing_column:
    "the model no longer returns a column this mapping reads: fix the model's SQL or the mapping's fields",
  invalid_object:
    'a column mapped as an object holds something else: fix the model, or use customize object ({object: …}) to build the value',
  invalid_array: 'a column mapped as an array holds something else: fix the model, or map another column',
  constraint_violation:
    'the destination rejected the value: fix the model data or the destination constraint; the records are retried on the next sync',
  missing_table: 'the destination table does not exist: create it (or fix `table`), then sync again',
  query_failed:
    "the model's query failed on the source: fix the SQL (run `backflow plan` to check it) and sync again",
  connection_failed:
    'backflow could not connect: check the URL, credentials (environment variables) and that the server is up',
  interrupted:
    'the run was interrupted before it finished; nothing it had not confirmed was recorded, and the next sync sends those records again',
  abandoned:
    'the process running this sync stopped before it finished; the next sync sends every record that was not confirmed',
  expired:
    'these records failed for longer than retry.max_age and are no longer retried: fix the cause, then `backflow reset` the mapping to send them again',
  file_write_failed: 'the destination file cannot be written: check the path and permissions',
  network_error: 'the destination could not be reached; backflow retries these records on the next sync',
};

export function recommendedAction(code: string, kind: 'rejected' | 'retry' | 'run' = 'rejected'): string {
  const known = RECOMMENDED[code];
  if (known) return known;
  if (/^http_(408|429|5\d\d)$/.test(code) || kind === 'retry')
    return 'the destination was unavailable or throttled; backflow retries these records on the next sync (for retry.max_age)';
  if (/^http_4\d\d$/.test(code))
    return "the destination rejected these records: check the sample payloads against the destination's API, fix the model or the mapping; they are retried on the next sync";
  return kind === 'run'
    ? 'check the message, fix the cause and run the sync again'
    : 'the destination rejected these records: fix the model data or the mapping; they are retried on the next sync';
}

/** Groups record failures by code, counting and keeping up to three sample payloads. */
export class ErrorCollector {
  private readonly groups = new Map<
    string,
    { message: string; records: number; samples: unknown[]; kind: 'rejected' | 'retry' | 'run' }
  >();

  add(
    code: string,
    message: string,
    payload: unknown,
    kind: 'rejected' | 'retry' | 'run' = 'rejected',
    count = 1,
  ): void {
    const g = this.groups.get(code) ?? { message, records: 0, samples: [], kind };
    g.records += count;
    if (payload !== undefined && g.samples.length < 3) g.samples.push(payload);
    this.groups.set(code, g);
  }

  toErrors(): RunError[] {
    return [...this.groups.entries()]
      .sort((a, b) => b[1].records - a[1].records)
      .map(([code, g]) => ({
        code,
        message: g.message,
        records: g.records,
        recommended_action: recommendedAction(code, g.kind),
        sample_payloads: g.samples,
      }));
  }
}
