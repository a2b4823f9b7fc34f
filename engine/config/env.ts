import { UserError } from '../errors.js';

/** `${env:NAME}` — a reference to an environment variable, resolved only when a connection opens. */
export const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;
const ANY_INTERPOLATION = /\$\{([^}]*)\}/g;

/** Names of the variables a string refers to. */
export function envRefs(text: string): string[] {
  return [...text.matchAll(ENV_REF)].map((m) => m[1]!);
}

/** Interpolations that are not `${env:NAME}` (typos such as `${ENV:X}` or `${env.X}`). */
export function badInterpolations(text: string): string[] {
  return [...text.matchAll(ANY_INTERPOLATION)]
    .map((m) => m[0])
    .filter((m) => !/^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/.test(m));
}

/** Replaces every `${env:NAME}`; an unset variable is an error naming it and who needs it. */
export function resolveEnv(text: string, who: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(ENV_REF, (_, name: string) => {
    const value = env[name];
    if (value === undefined)
      throw new UserError(`environment variable ${name} is not set (needed by ${who})`, {
        hint: `export ${name}=… before running backflow, or set it in your CI secrets`,
      });
    return value;
  });
}

/** Resolves every string inside a value (objects and arrays too). */
export function resolveDeep<T>(value: T, who: string, env: NodeJS.ProcessEnv = process.env): T {
  if (typeof value === 'string') return resolveEnv(value, who, env) as T;
  if (Array.isArray(value)) return value.map((v) => resolveDeep(v, who, env)) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveDeep(v, who, env)])) as T;
  return value;
}

const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]+)@/i;

/** True when a URL carries an inline password that is not an env reference. */
export function hasInlinePassword(text: string): boolean {
  const m = URL_PASSWORD.exec(text);
  return !!m && !/^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/.test(m[2]!);
}

/** Hides inline passwords in URLs (`postgres://u:***@h/db`), keeping env references visible. */
export function redact(text: string): string {
  return text.replace(
    /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s'"]*):([^@/?#\s'"]+)@/gi,
    (whole, head: string, pw: string) =>
      /^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/.test(pw) ? whole : `${head}:***@`,
  );
}

/** Applies `redact` to every string of a value. */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map(redactDeep) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)])) as T;
  return value;
}
