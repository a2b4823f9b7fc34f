import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Diagnostic } from '../diagnostics.js';
import { parseHcl } from './hcl.js';
import type { ParsedFile } from './parsed-file.js';
import { SECTION_NAMES, SECTIONS, type SectionName } from './sections.js';
import { SourceMap } from './source-map.js';
import { parseYaml } from './yaml.js';

/** The merged document of a config directory, before validation. */
export interface LoadedDocument {
  readonly dir: string;
  readonly files: readonly string[];
  readonly data: Record<string, unknown>;
  readonly map: SourceMap;
  readonly diagnostics: readonly Diagnostic[];
}

const CONFIG_FILE = /\.(ya?ml|hcl)$/;

/** Reads every `*.yaml`, `*.yml`, `*.hcl` of `dir` (not recursive) and merges them. */
export async function loadDocument(dir: string): Promise<LoadedDocument> {
  const abs = resolve(dir);
  const diagnostics: Diagnostic[] = [];
  let names: string[];
  try {
    names = (await readdir(abs, { withFileTypes: true }))
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && CONFIG_FILE.test(e.name))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    diagnostics.push({
      severity: 'error',
      code: 'config_dir_unreadable',
      summary:
        code === 'ENOENT'
          ? `config directory ${abs} does not exist`
          : `cannot read config directory ${abs}: ${(e as Error).message}`,
      detail: 'pass the directory holding your *.yaml/*.hcl files with --dir, or run `backflow init DIR`',
      file: abs,
    });
    return { dir: abs, files: [], data: {}, map: new SourceMap(), diagnostics };
  }
  if (names.length === 0) {
    diagnostics.push({
      severity: 'error',
      code: 'no_config_files',
      summary: `no *.yaml, *.yml or *.hcl files in ${abs}`,
      detail: 'pass the config directory with --dir, or create a starter config with `backflow init DIR`',
      file: abs,
    });
    return { dir: abs, files: [], data: {}, map: new SourceMap(), diagnostics };
  }
  const parsed: ParsedFile[] = [];
  for (const name of names) {
    const file = join(abs, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      diagnostics.push({
        severity: 'error',
        code: 'file_unreadable',
        summary: `cannot read ${name}: ${(e as Error).message}`,
        detail: 'check the file permissions',
        file,
        line: 1,
        column: 1,
      });
      continue;
    }
    parsed.push(name.endsWith('.hcl') ? await parseHcl(file, text) : parseYaml(file, text));
  }
  const merged = mergeFiles(parsed);
  return {
    dir: abs,
    files: names.map((n) => join(abs, n)),
    ...merged,
    diagnostics: [...diagnostics, ...merged.diagnostics],
  };
}

/** Merges parsed files section by section; a resource defined twice names both places. */
export function mergeFiles(files: readonly ParsedFile[]): {
  data: Record<string, unknown>;
  map: SourceMap;
  diagnostics: Diagnostic[];
} {
  const data: Record<string, unknown> = {};
  const map = new SourceMap();
  const diagnostics: Diagnostic[] = [];
  const owner = new Map<string, ParsedFile>();
  for (const f of files) {
    diagnostics.push(...f.diagnostics);
    const skipped: string[] = [];
    if (!f.data) continue;
    for (const [section, body] of Object.entries(f.data)) {
      const isResourceMap = (SECTION_NAMES as string[]).includes(section);
      const isSettings = section === 'settings';
      if (
        (isResourceMap || isSettings) &&
        body !== null &&
        typeof body === 'object' &&
        !Array.isArray(body)
      ) {
        if (!data[section]) data[section] = {};
        const target = data[section] as Record<string, unknown>;
        for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
          const path = [section, name];
          const id = path.join('/');
          const first = owner.get(id);
          if (first && name in target) {
            const a = first.map.key(path);
            const b = f.map.key(path);
            const what = isSettings ? `settings.${name}` : `${SECTIONS[section as SectionName]}.${name}`;
            diagnostics.push({
              severity: 'error',
              code: 'duplicate_resource',
              summary: `${what} is defined twice: in ${place(a)} and in ${place(b)}`,
              detail: 'each resource is defined once across all files; remove or rename one of them',
              ...(b ?? { file: f.file }),
              address: isSettings ? undefined : what,
            } as Diagnostic);
            skipped.push(id);
            continue;
          }
          owner.set(id, f);
          target[name] = value;
        }
      } else {
        if (section in data) {
          diagnostics.push({
            severity: 'error',
            code: 'duplicate_section',
            summary: `\`${section}\` appears in more than one file`,
            ...(f.map.key([section]) ?? { file: f.file }),
          } as Diagnostic);
          continue;
        }
        data[section] = body;
      }
    }
    map.merge(f.map, (k) => !skipped.some((p) => k === p || k.startsWith(`${p}/`)));
  }
  return { data, map, diagnostics };
}

function place(p: { file: string; line: number } | undefined): string {
  return p ? `${p.file.split('/').pop()}:${p.line}` : 'another file';
}
