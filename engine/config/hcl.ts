import { parse } from '@cdktf/hcl2json';
import type { Diagnostic } from '../diagnostics.js';
import type { ParsedFile } from './parsed-file.js';
import { KIND_TO_SECTION } from './sections.js';
import { SourceMap } from './source-map.js';

/**
 * Parses one HCL file (`model "active_users" { ... }` blocks) into the same document YAML gives.
 * The converter reports syntax errors as `FILE:LINE,COL`; node positions come from a small
 * line scanner (block headers and `key =` lines), since the converter keeps none.
 */
export async function parseHcl(file: string, text: string): Promise<ParsedFile> {
  const map = scanPositions(file, text);
  const diagnostics: Diagnostic[] = [];
  let raw: Record<string, unknown>;
  try {
    raw = (await parse(file, text)) as Record<string, unknown>;
  } catch (e) {
    diagnostics.push(...syntaxDiagnostics(file, e));
    return { file, data: undefined, map, diagnostics };
  }
  const data: Record<string, unknown> = {};
  for (const [blockType, value] of Object.entries(raw)) {
    const at = map.key([blockType]) ?? { file, line: 1, column: 1 };
    if (blockType === 'settings') {
      const bodies = asArray(value);
      if (bodies.length > 1)
        diagnostics.push({
          severity: 'error',
          code: 'duplicate_resource',
          summary: '`settings` is defined more than once in this file',
          ...at,
        });
      data.settings = convert(bodies[0], ['settings'], file, map, diagnostics);
      continue;
    }
    const section = (KIND_TO_SECTION as Record<string, string | undefined>)[blockType];
    if (!section) {
      // Keep it so schema validation reports it with a "did you mean" hint; plural names are a common slip.
      data[blockType] = convert(value, [blockType], file, map, diagnostics);
      continue;
    }
    const resources: Record<string, unknown> = {};
    for (const [name, bodies] of Object.entries((value ?? {}) as Record<string, unknown>)) {
      const list = asArray(bodies);
      if (list.length > 1) {
        const where = map.key([section, name]) ?? at;
        diagnostics.push({
          severity: 'error',
          code: 'duplicate_resource',
          summary: `${blockType} "${name}" is defined ${list.length} times in this file`,
          detail: 'each resource is defined once; rename or remove the others',
          ...where,
        });
      }
      resources[name] = convert(list[0], [section, name], file, map, diagnostics);
    }
    data[section] = { ...((data[section] as object | undefined) ?? {}), ...resources };
  }
  return { file, data, map, diagnostics };
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

const ENV_CALL = /^\$\{env\("([A-Za-z_][A-Za-z0-9_]*)"\)\}$/;
const INTERPOLATION = /\$\{([^}]*)\}/g;

/** Unwraps nested blocks (one-element arrays of objects) and turns `env("X")` into `${env:X}`. */
function convert(
  value: unknown,
  path: (string | number)[],
  file: string,
  map: SourceMap,
  diagnostics: Diagnostic[],
): unknown {
  if (typeof value === 'string') {
    if (ENV_CALL.test(value)) return value.replace(ENV_CALL, '${env:$1}');
    return value.replace(INTERPOLATION, (whole, expr: string) => {
      const env = /^env\("([A-Za-z_][A-Za-z0-9_]*)"\)$/.exec(expr.trim());
      if (env) return `\${env:${env[1]}}`;
      if (/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(expr)) return whole;
      const at = map.key(path) ?? { file, line: 1, column: 1 };
      diagnostics.push({
        severity: 'error',
        code: 'unsupported_expression',
        summary: `HCL expression \`${expr}\` is not supported`,
        detail: 'write values as literals ("warehouse", not warehouse); secrets come from env("NAME")',
        ...at,
      });
      return whole;
    });
  }
  if (Array.isArray(value)) {
    if (value.length === 1 && value[0] && typeof value[0] === 'object' && !Array.isArray(value[0]))
      return convert(value[0], path, file, map, diagnostics);
    return value.map((v, i) => convert(v, [...path, i], file, map, diagnostics));
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = convert(v, [...path, k], file, map, diagnostics);
    return out;
  }
  return value;
}

const ERROR =
  /([^\s[\]]+):(\d+),(\d+)(?:-\d+(?:,\d+)?)?: ([^;\]]+)(?:; ([^\]]*?))?(?=\]|, [^\s[\]]+:\d+,\d+|$)/g;

function syntaxDiagnostics(file: string, e: unknown): Diagnostic[] {
  const message = e instanceof Error ? e.message : String(e);
  const out: Diagnostic[] = [];
  for (const m of message.matchAll(ERROR)) {
    out.push({
      severity: 'error',
      code: 'hcl_syntax',
      summary: `HCL syntax error: ${m[4]!.trim()}`,
      ...(m[5] ? { detail: m[5].trim() } : {}),
      file,
      line: Number(m[2]),
      column: Number(m[3]),
    });
  }
  if (out.length === 0)
    out.push({
      severity: 'error',
      code: 'hcl_syntax',
      summary: `HCL syntax error: ${message}`,
      file,
      line: 1,
      column: 1,
    });
  return out;
}

/**
 * Records where block headers (`model "x" {`, `retry {`) and attributes (`sql =`) stand,
 * tracking nesting by braces outside strings and skipping heredocs.
 */
function scanPositions(file: string, text: string): SourceMap {
  const map = new SourceMap();
  const stack: string[][] = [[]];
  const lines = text.split('\n');
  let heredoc: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (heredoc) {
      if (line.trim() === heredoc) heredoc = undefined;
      continue;
    }
    const current = stack[stack.length - 1]!;
    const indent = line.length - line.trimStart().length;
    const pos = { file, line: i + 1, column: indent + 1 };
    const block = /^\s*([A-Za-z_][\w-]*)\s*(?:"([^"]*)"\s*)?\{/.exec(line);
    const attr = /^\s*"?([A-Za-z_][\w-]*)"?\s*=\s*/.exec(line);
    let opened: string[] | undefined;
    if (block && stack.length === 1) {
      const section =
        block[1] === 'settings'
          ? 'settings'
          : (KIND_TO_SECTION as Record<string, string | undefined>)[block[1]!];
      const path =
        section === 'settings'
          ? ['settings']
          : block[2] !== undefined
            ? [section ?? block[1]!, block[2]]
            : [block[1]!];
      map.setKey([block[1]!], pos);
      map.setKey(path, pos);
      map.setValue(path, pos);
      opened = path;
    } else if (block) {
      const path = [...current, block[1]!];
      map.setKey(path, pos);
      opened = path;
    } else if (attr) {
      const path = [...current, attr[1]!];
      map.setKey(path, pos);
      map.setValue(path, { ...pos, column: pos.column + attr[0].length - indent });
      const rest = line.slice(attr[0].length);
      const here = /^<<-?([A-Za-z_]\w*)\s*$/.exec(rest);
      if (here) heredoc = here[1];
      if (rest.trimStart().startsWith('{')) opened = path;
    }
    const delta = braceDelta(line);
    if (delta > 0) {
      stack.push(opened ?? current);
      for (let d = 1; d < delta; d++) stack.push(opened ?? current);
    } else if (delta < 0) {
      for (let d = 0; d < -delta && stack.length > 1; d++) stack.pop();
    }
  }
  return map;
}

function braceDelta(line: string): number {
  let depth = 0;
  let quote = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === '"') quote = false;
    } else if (c === '"') quote = true;
    else if (c === '#' || (c === '/' && line[i + 1] === '/')) break;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
  }
  return depth;
}
