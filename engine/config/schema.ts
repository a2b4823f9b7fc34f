import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { closest, type Diagnostic } from '../diagnostics.js';
import { packageRoot } from '../paths.js';
import { SECTIONS, type SectionName } from './sections.js';
import type { SourceMap } from './source-map.js';

/** The config JSON Schema (schemas/config.schema.json): the single source of truth for validation and types. */
export const configSchema: Record<string, unknown> = JSON.parse(
  readFileSync(join(packageRoot, 'schemas', 'config.schema.json'), 'utf8'),
);

let validator: ReturnType<Ajv['compile']> | undefined;
function compiled() {
  if (!validator) {
    const ajv = new Ajv({
      allErrors: true,
      verbose: true,
      strict: true,
      strictTypes: false,
      strictRequired: false,
      allowUnionTypes: true,
    });
    ajv.addKeyword('tsType');
    validator = ajv.compile(configSchema);
  }
  return validator;
}

/** Validates the merged document against the schema; every error becomes a positioned diagnostic. */
export function validateSchema(data: unknown, map: SourceMap): Diagnostic[] {
  const validate = compiled();
  if (validate(data)) return [];
  return resolveOneOf([...(validate.errors ?? [])])
    .filter((e) => e.keyword !== 'if')
    .map((e) => toDiagnostic(e, map))
    .filter((d, i, all) => all.findIndex((o) => o.summary === d.summary && o.line === d.line) === i);
}

/** For a `oneOf` failure, keep only the errors of the branch the value most likely meant. */
function resolveOneOf(errors: ErrorObject[]): ErrorObject[] {
  let list = errors;
  const oneOfs = list
    .filter((e) => e.keyword === 'oneOf')
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const one of oneOfs) {
    if (!list.includes(one)) continue;
    const prefix = `${one.schemaPath}/`;
    const branches = new Map<number, ErrorObject[]>();
    for (const e of list) {
      if (!e.schemaPath.startsWith(prefix)) continue;
      const idx = Number(e.schemaPath.slice(prefix.length).split('/')[0]);
      branches.set(idx, [...(branches.get(idx) ?? []), e]);
    }
    const shapeMiss = (errs: ErrorObject[]) =>
      errs.some(
        (e) =>
          e.instancePath === one.instancePath &&
          (e.keyword === 'type' || e.keyword === 'enum' || (e.keyword === 'required' && errs.length === 1)),
      );
    const candidates = [...branches.entries()].filter(([, errs]) => !shapeMiss(errs));
    const inBranches = new Set([...branches.values()].flat());
    if (candidates.length === 0) {
      list = list.filter((e) => !inBranches.has(e));
      continue;
    }
    candidates.sort((a, b) => a[1].length - b[1].length);
    const keep = new Set(candidates[0]![1]);
    list = list.filter((e) => e !== one && (!inBranches.has(e) || keep.has(e)));
  }
  return list;
}

function segments(instancePath: string): string[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function addressOf(path: string[]): string | undefined {
  const [section, name] = path;
  if (section && name && section in SECTIONS) return `${SECTIONS[section as SectionName]}.${name}`;
  return undefined;
}

function describePath(path: string[]): string {
  const address = addressOf(path);
  if (address) return path.length > 2 ? `${address}: \`${path.slice(2).join('.')}\`` : address;
  return path.length ? `\`${path.join('.')}\`` : 'the document';
}

function toDiagnostic(e: ErrorObject, map: SourceMap): Diagnostic {
  const path = segments(e.instancePath);
  const address = addressOf(path);
  const base = { severity: 'error' as const, ...(address ? { address } : {}) };
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys(((e.parentSchema as { properties?: object }).properties ?? {}) as object);
      const hint = closest(field, known);
      const top = path.length === 0;
      return {
        ...base,
        code: top ? 'unknown_section' : 'unknown_field',
        summary: top ? `unknown section \`${field}\`` : `unknown field \`${field}\` in ${describePath(path)}`,
        detail: hint ? `did you mean \`${hint}\`?` : `allowed: ${known.join(', ')}`,
        ...(map.key([...path, field]) ?? {}),
      };
    }
    case 'required': {
      const field = String((e.params as { missingProperty: string }).missingProperty);
      return {
        ...base,
        code: 'missing_field',
        summary: `${describePath(path)} is missing required field \`${field}\``,
        ...(map.key(path) ?? {}),
      };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      const hint = closest(String(e.data), allowed);
      return {
        ...base,
        code: 'invalid_value',
        summary: `${describePath(path)} must be one of ${allowed.map((a) => `\`${a}\``).join(', ')}, not \`${String(e.data)}\``,
        ...(hint ? { detail: `did you mean \`${hint}\`?` } : {}),
        ...(map.value(path) ?? {}),
      };
    }
    case 'type':
      return {
        ...base,
        code: 'invalid_type',
        summary: `${describePath(path)} must be ${article((e.params as { type: string }).type)}, not ${typeName(e.data)}`,
        ...(map.value(path) ?? {}),
      };
    case 'propertyNames':
    case 'pattern': {
      if (e.keyword === 'propertyNames' || (e.propertyName !== undefined && e.keyword === 'pattern')) {
        const name = String((e.params as { propertyName?: string }).propertyName ?? e.propertyName ?? e.data);
        return {
          ...base,
          code: 'invalid_name',
          summary: `invalid resource name \`${name}\` in \`${path.join('.')}\``,
          detail: 'names start with a lower-case letter and hold only a-z, 0-9 and _ (e.g. `active_users`)',
          ...(map.key([...path, name]) ?? {}),
        };
      }
      const isDuration = String((e.params as { pattern: string }).pattern).includes('ms|s|m|h|d');
      return {
        ...base,
        code: isDuration ? 'invalid_duration' : 'invalid_value',
        summary: `${describePath(path)}: \`${String(e.data)}\` ${isDuration ? 'is not a duration' : `does not match ${(e.params as { pattern: string }).pattern}`}`,
        ...(isDuration ? { detail: 'write a number and a unit: 500ms, 30s, 15m, 24h, 14d' } : {}),
        ...(map.value(path) ?? {}),
      };
    }
    case 'oneOf': {
      const description = (e.parentSchema as { description?: string }).description;
      return {
        ...base,
        code: 'invalid_value',
        summary: `${describePath(path)} has an unsupported form`,
        ...(description ? { detail: description } : {}),
        ...(map.value(path) ?? {}),
      };
    }
    default:
      return {
        ...base,
        code: `schema_${e.keyword}`,
        summary: `${describePath(path)} ${e.message ?? 'is invalid'}`,
        ...(map.value(path) ?? {}),
      };
  }
}

function article(type: string): string {
  const t = type.replace(/,/g, ' or ');
  return /^[aeio]/.test(t) ? `an ${t}` : `a ${t}`;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} \`${String(v)}\``;
}
