import { type Row, setField } from '../../providers/sdk.js';
import type { FieldValue } from '../config/types.gen.js';
import { UserError } from '../errors.js';

/**
 * A mapping's `fields` compiled once into closures (SPEC §1 "Field mappings"), so mapping a row is a
 * handful of property reads. A problem with one row's data (wrong shape, column gone) fails that record
 * only; it is returned as data, never thrown to the caller.
 */

/** The outcome of mapping one row: the destination fields, or why this record cannot be sent. */
export type MapResult =
  | { readonly ok: true; readonly fields: Record<string, unknown> }
  | {
      readonly ok: false;
      /** `missing_column`, `invalid_object`, `invalid_array`. */
      readonly code: string;
      readonly message: string;
      /** The destination field (dotted for properties of a customized object: `product.color`). */
      readonly field: string;
    };

/** A model column a mapping reads, and the destination field that reads it. */
export interface ColumnReference {
  readonly field: string;
  /** As written in the mapping (`traits.color`). */
  readonly path: string;
  /** The top-level column (`traits`): the first segment of a dotted path. */
  readonly column: string;
}

/** A compiled `fields` block. */
export interface FieldMapper {
  map(row: Row): MapResult;
  /** The top-level model columns the mapping reads (first segment of dotted paths), for plan-refresh checks. */
  columns(): string[];
  /**
   * Field → the column path it reads, when every field reads a column as it is (no constant, object,
   * array or type): then a row whose columns include each path verbatim maps to exactly those values.
   * Undefined for any other mapping.
   */
  plainColumns(): ReadonlyMap<string, string> | undefined;
  /**
   * The references no column of `available` can satisfy. Unlike `columns()` this knows that
   * `traits.color` is also satisfied by a column literally named `traits.color`.
   */
  missingColumns(available: Iterable<string>): ColumnReference[];
}

/** A property outside a destination field's fixed list (the seed's "the data won't send"). */
export interface FixedPropertyProblem {
  readonly severity: 'error' | 'warning';
  /** `unknown_property` (error) or `unchecked_properties` (warning: select object/array sends whatever the data holds). */
  readonly code: 'unknown_property' | 'unchecked_properties';
  readonly field: string;
  readonly property?: string;
  readonly allowed: readonly string[];
  readonly message: string;
}

// A property absent from its object: omitted from a customized object or array item, null at top level.
const MISSING: unique symbol = Symbol('missing');
type Value = unknown;

/** Thrown inside a compiled mapper and turned into a `{ok: false}` result by `map()`; never escapes. */
class MapFailure {
  constructor(
    readonly code: string,
    readonly field: string,
    readonly message: string,
  ) {}
}

type Getter = (row: Row) => Value;

interface Compiled {
  readonly get: Getter;
  readonly refs: ColumnReference[];
}

/** Compiles a mapping's `fields`. Throws `UserError` only for a malformed field (the schema should have caught it). */
export function compileFields(fields: Readonly<Record<string, FieldValue>>): FieldMapper {
  const entries: { readonly name: string; readonly get: Getter }[] = [];
  const refs: ColumnReference[] = [];
  for (const [name, value] of Object.entries(fields)) {
    const compiled = compileValue(name, value);
    entries.push({ name, get: compiled.get });
    refs.push(...compiled.refs);
  }
  const columns = [...new Set(refs.map((r) => r.column))];
  const plain = new Map<string, string>();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string') plain.set(name, value);
    else if (isPlainColumn(value)) plain.set(name, value.column);
  }

  return {
    map(row: Row): MapResult {
      const out: Record<string, unknown> = {};
      try {
        for (const { name, get } of entries) {
          const v = get(row);
          setField(out, name, v === MISSING || v === undefined ? null : v);
        }
      } catch (e) {
        if (e instanceof MapFailure) return { ok: false, code: e.code, message: e.message, field: e.field };
        throw e;
      }
      return { ok: true, fields: out };
    },
    columns: () => [...columns],
    plainColumns: () => (plain.size === entries.length ? plain : undefined),
    missingColumns(available: Iterable<string>): ColumnReference[] {
      const have = new Set(available);
      return refs.filter((r) => !splits(r.path).some((s) => have.has(s.column)));
    },
  };
}

/** `{column}` without a type, as compileValue reads it (value, object and array take precedence). */
function isPlainColumn(value: FieldValue): value is { column: string } {
  if (typeof value !== 'object' || value === null) return false;
  return (
    !('value' in value) && !('object' in value) && !('array' in value) && 'column' in value && !value.type
  );
}

function compileValue(field: string, value: FieldValue): Compiled {
  if (typeof value === 'string') return compileColumn(field, value, undefined);
  if (typeof value !== 'object' || value === null) throw malformed(field);
  if ('value' in value) {
    const constant: unknown = value.value;
    return { get: () => constant, refs: [] };
  }
  if ('object' in value) return compileObject(field, value.object);
  if ('array' in value) return compileArray(field, value.array.column, value.array.items);
  if ('column' in value) return compileColumn(field, value.column, value.type);
  throw malformed(field);
}

function malformed(field: string): UserError {
  return new UserError(`field \`${field}\`: expected a column name, {column}, {value}, {object} or {array}`, {
    hint: 'see "Field mappings" in the documentation',
  });
}

function compileColumn(field: string, path: string, type: 'object' | 'array' | undefined): Compiled {
  const read = compilePath(field, path);
  const refs = [{ field, path, column: splits(path).at(-1)?.column ?? path }];
  if (type === undefined) return { get: read, refs };
  const shape = type === 'object' ? asObject : asArray;
  const where = () => `column \`${path}\``;
  return {
    get: (row) => {
      const v = read(row);
      return v === null || v === undefined || v === MISSING ? v : shape(v, field, where);
    },
    refs,
  };
}

function compileObject(field: string, props: Readonly<Record<string, FieldValue>>): Compiled {
  if (typeof props !== 'object' || props === null) throw malformed(field);
  const parts = Object.entries(props).map(([name, v]) => ({ name, ...compileValue(`${field}.${name}`, v) }));
  return {
    get: (row) => {
      const out: Record<string, unknown> = {};
      for (const { name, get } of parts) {
        const v = get(row);
        if (v !== MISSING) setField(out, name, v === undefined ? null : v);
      }
      return out;
    },
    refs: parts.flatMap((p) => p.refs),
  };
}

function compileArray(
  field: string,
  column: string,
  items: Readonly<Record<string, string | { column: string }>>,
): Compiled {
  const read = compilePath(field, column);
  const props = Object.entries(items).map(([out, from]) => {
    return { out, segments: splits(typeof from === 'string' ? from : from.column) };
  });
  return {
    get: (row) => {
      const v = read(row);
      if (v === null || v === undefined || v === MISSING) return v;
      const list = asArray(v, field, () => `column \`${column}\``);
      return list.map((raw, i) => {
        const where = () => `item ${i} of column \`${column}\``;
        if (raw === null || raw === undefined) {
          throw new MapFailure(
            'invalid_array',
            field,
            `field \`${field}\`: ${where()} is null, not an object`,
          );
        }
        const item = isPlainObject(raw) ? raw : asObject(raw, field, where, 'invalid_array');
        const out: Record<string, unknown> = {};
        for (const p of props) {
          const value = readItemProperty(item, p.segments, field, where);
          if (value !== MISSING) setField(out, p.out, value === undefined ? null : value);
        }
        return out;
      });
    },
    refs: [{ field, path: column, column: splits(column).at(-1)?.column ?? column }],
  };
}

/**
 * The ways to read a dotted path: the longest literal column name first (a column really named
 * `traits.color` wins), down to the first segment as the column and the rest as properties inside it.
 */
interface Split {
  readonly column: string;
  readonly rest: readonly string[];
}

function splits(path: string): Split[] {
  const segments = path.split('.');
  const out: Split[] = [];
  for (let n = segments.length; n >= 1; n--) {
    out.push({ column: segments.slice(0, n).join('.'), rest: segments.slice(n) });
  }
  return out;
}

function compilePath(field: string, path: string): Getter {
  const options = splits(path);
  const only = options.length === 1 ? options[0] : undefined;
  if (only) {
    const column = only.column;
    return (row) => {
      if (!Object.hasOwn(row, column)) throw missingColumn(field, column);
      return row[column];
    };
  }
  return (row) => {
    for (const { column, rest } of options) {
      if (Object.hasOwn(row, column)) return readIn(row[column], rest, field, () => `column \`${column}\``);
    }
    throw missingColumn(field, options.at(-1)?.column ?? path);
  };
}

/** Like a column path, but inside an array item: no matching property means the property is missing. */
function readItemProperty(
  item: Record<string, unknown>,
  options: readonly Split[],
  field: string,
  where: Where,
): Value {
  for (const { column, rest } of options) {
    if (Object.hasOwn(item, column)) {
      return readIn(item[column], rest, field, () => `property \`${column}\` of ${where()}`);
    }
  }
  return MISSING;
}

function missingColumn(field: string, column: string): MapFailure {
  return new MapFailure(
    'missing_column',
    field,
    `field \`${field}\`: the model returned no column \`${column}\` (check the model's SQL or the mapping)`,
  );
}

// Where a value sits, for messages: built only when a record fails, never on the happy path.
type Where = () => string;

/**
 * Reads `rest` inside `value`. A NULL on the way yields null (the data is null); an absent property
 * yields MISSING; a non-object on the way fails the record.
 */
function readIn(value: Value, rest: readonly string[], field: string, where: Where): Value {
  let cur = value;
  for (let i = 0; i < rest.length; i++) {
    if (cur === null || cur === undefined) return null;
    const obj = isPlainObject(cur) ? cur : asObject(cur, field, () => nestedWhere(where, rest, i));
    const seg = rest[i] as string;
    if (!Object.hasOwn(obj, seg)) return MISSING;
    cur = obj[seg];
  }
  return cur;
}

// `property \`b\` of property \`a\` of column \`traits\`` for the value reached after rest[0..depth).
function nestedWhere(where: Where, rest: readonly string[], depth: number): string {
  let at = where();
  for (let i = 0; i < depth; i++) at = `property \`${rest[i]}\` of ${at}`;
  return at;
}

function asObject(v: Value, field: string, where: Where, code = 'invalid_object'): Record<string, unknown> {
  const decoded = typeof v === 'string' ? decodeJsonText(v, '{') : v;
  if (isPlainObject(decoded)) return decoded;
  throw new MapFailure(code, field, `field \`${field}\`: ${where()} holds ${describe(v)}, not an object`);
}

function asArray(v: Value, field: string, where: Where): unknown[] {
  const decoded = typeof v === 'string' ? decodeJsonText(v, '[') : v;
  if (Array.isArray(decoded)) return decoded;
  throw new MapFailure(
    'invalid_array',
    field,
    `field \`${field}\`: ${where()} holds ${describe(v)}, not an array`,
  );
}

/** JSON text (SQLite TEXT, drivers returning json as a string) is decoded where an object or array is expected. */
function decodeJsonText(text: string, opener: '{' | '['): unknown {
  const start = text.trimStart();
  if (!start.startsWith(opener)) return text;
  try {
    return JSON.parse(start);
  } catch {
    return text;
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: Value): string {
  if (typeof v === 'string') {
    const t = v.trimStart();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(t);
        return `JSON text with ${describe(parsed)}`;
      } catch {
        return 'text that is not valid JSON';
      }
    }
    return 'a string';
  }
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (v instanceof Uint8Array) return 'binary data';
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'object') return isPlainObject(v) ? 'an object' : `a ${v.constructor?.name ?? 'value'}`;
  if (typeof v === 'bigint') return 'a number';
  return `a ${typeof v}`;
}

/**
 * Checks the properties a mapping sends into destination fields that accept a fixed list
 * (`ActionSpec.fixedProperties`). Customized objects and arrays and constant objects are checked
 * exactly; select object / select array send whatever the data holds, so they get a warning
 * recommending customize object/array (as the seed does).
 */
export function validateFixedProperties(
  fields: Readonly<Record<string, FieldValue>>,
  fixed: Readonly<Record<string, readonly string[]>>,
): FixedPropertyProblem[] {
  const problems: FixedPropertyProblem[] = [];
  for (const [field, allowed] of Object.entries(fixed)) {
    if (!Object.hasOwn(fields, field)) continue;
    const value = fields[field];
    const allow = new Set(allowed);
    const unknown = (property: string): void => {
      if (allow.has(property)) return;
      problems.push({
        severity: 'error',
        code: 'unknown_property',
        field,
        property,
        allowed,
        message: `field \`${field}\` accepts only the properties ${list(allowed)}; \`${property}\` would not be sent`,
      });
    };
    if (typeof value === 'string' || value === undefined) {
      problems.push(unchecked(field, allowed, 'reads a column'));
    } else if ('object' in value) {
      Object.keys(value.object).forEach(unknown);
    } else if ('array' in value) {
      Object.keys(value.array.items).forEach(unknown);
    } else if ('value' in value) {
      const constant: unknown = value.value;
      const objects = Array.isArray(constant) ? constant : [constant];
      const keys = new Set(objects.filter(isPlainObject).flatMap((o) => Object.keys(o)));
      keys.forEach(unknown);
    } else if ('column' in value) {
      problems.push(
        unchecked(field, allowed, value.type ? `selects the whole ${value.type}` : 'reads a column'),
      );
    }
  }
  return problems;
}

function unchecked(field: string, allowed: readonly string[], how: string): FixedPropertyProblem {
  return {
    severity: 'warning',
    code: 'unchecked_properties',
    field,
    allowed,
    message: `field \`${field}\` ${how}, but it accepts only the properties ${list(allowed)}: a record with other properties will not send (use {object: ...} or {array: ...} to choose them)`,
  };
}

function list(names: readonly string[]): string {
  return names.map((n) => `\`${n}\``).join(', ');
}
