import { UserError } from '../../engine/errors.js';
import { entryOf, isFailing } from '../../engine/status/document.js';
import { openStatusStore } from '../../engine/status/index.js';
import type { StatusDocument } from '../../engine/status/types.js';
import { type IO, print, printJson } from '../io.js';
import { renderStatusText } from '../render/status-text.js';
import { readSettings } from '../settings.js';
import { stateBackend } from '../workspace.js';

export interface StatusOptions {
  readonly dir: string;
  readonly json?: boolean;
  /** Mappings whose failure makes the command exit 1; `all`: any applied mapping. */
  readonly failOn?: readonly string[];
}

/**
 * `backflow status [--json] [--fail-on MAPPING|all]`: the status document. A mapping is failing when
 * its last run has status `failed` (`partial_success` is reported but does not fail the check).
 */
export async function statusCommand(io: IO, opts: StatusOptions): Promise<number> {
  const config = await readSettings(io, opts.dir);
  const status = await openStatusStore(config.dir, config.doc.settings);
  let doc: StatusDocument;
  try {
    doc = await status.read();
  } finally {
    await status.close();
  }
  const backend = await stateBackend(config);
  let applied: string[] | undefined;
  try {
    const state = await backend.read();
    applied = state?.resources.filter((r) => r.kind === 'mapping').map((r) => r.name);
  } finally {
    await backend.close();
  }

  const failing = failingMappings(doc, opts.failOn ?? [], applied);
  if (opts.json) printJson(io, doc);
  else
    print(
      io,
      renderStatusText(doc, { ...(applied ? { applied } : {}), where: status.description }, io.style),
    );
  for (const name of failing) {
    const last = entryOf(doc, 'mapping', name)!.last_run;
    io.err.write(
      `${io.errStyle.red('failing:')} mapping ${name}: last run ${last.id} failed at ${last.finished_at ?? last.started_at}${last.top_error ? ` (${last.top_error.code}: ${last.top_error.message.split('\n')[0]})` : ''}\n`,
    );
  }
  return failing.length > 0 ? 1 : 0;
}

/** The `--fail-on` mappings that are failing; an unknown name is an error (a typo must not pass CI). */
export function failingMappings(
  doc: StatusDocument,
  failOn: readonly string[],
  applied: readonly string[] | undefined,
): string[] {
  const names = failOn
    .flatMap((n) => n.split(','))
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.includes('all')) {
    const scope = applied ?? Object.keys(doc.mappings);
    return scope.filter((n) => isFailing(entryOf(doc, 'mapping', n))).sort();
  }
  for (const n of names)
    if (!applied?.includes(n) && !entryOf(doc, 'mapping', n))
      throw new UserError(`--fail-on ${n}: no mapping ${n} in the applied state or the status document`, {
        hint: `the applied mappings: ${applied?.length ? applied.join(', ') : '(none)'}; or use --fail-on all`,
      });
  return [...new Set(names)].filter((n) => isFailing(entryOf(doc, 'mapping', n))).sort();
}
