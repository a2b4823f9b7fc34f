import { readConfig } from '../../engine/config/index.js';
import { hasErrors } from '../../engine/diagnostics.js';
import { type IO, print, printDiagnostics, printJson } from '../io.js';

export interface ValidateOptions {
  readonly dir: string;
  readonly json?: boolean;
}

/** `backflow validate`: every problem at once; exit 1 on any error. */
export async function validateCommand(io: IO, opts: ValidateOptions): Promise<number> {
  const { config, diagnostics } = await readConfig(opts.dir);
  const valid = !!config && !hasErrors(diagnostics);
  if (opts.json) {
    printJson(io, {
      valid,
      diagnostics: diagnostics.map((d) => ({
        severity: d.severity,
        code: d.code,
        summary: d.summary,
        detail: d.detail ?? null,
        file: d.file ?? null,
        line: d.line ?? null,
        column: d.column ?? null,
        address: d.address ?? null,
      })),
    });
  } else {
    printDiagnostics(io, diagnostics);
    if (valid)
      print(
        io,
        `${io.style.green('Success!')} The configuration is valid (${config!.resources.length} resources in ${config!.files.length} files).`,
      );
    else {
      const n = diagnostics.filter((d) => d.severity === 'error').length;
      io.err.write(`${n} error${n === 1 ? '' : 's'} found.\n`);
    }
  }
  return valid ? 0 : 1;
}
