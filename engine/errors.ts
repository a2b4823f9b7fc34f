import type { Diagnostic } from './diagnostics.js';

/**
 * Errors say who must act. `UserError`: the input is wrong (message + the fix).
 * `ProviderError`: the remote side failed (retryable or not). `BugError`: ours.
 * Expected problems in config are `Diagnostic`s, not errors.
 */
export abstract class BackflowError extends Error {
  abstract readonly kind: 'user' | 'provider' | 'bug';
  /** What the person reading the message should do next. */
  readonly hint: string | undefined;
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint;
    this.name = new.target.name;
  }
}

/** The user's input is wrong; the message names the file/resource and the fix. */
export class UserError extends BackflowError {
  readonly kind = 'user' as const;
}

/** Config did not pass validation: carries every diagnostic. */
export class ConfigError extends UserError {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(`configuration has ${diagnostics.filter((d) => d.severity === 'error').length} error(s)`, {
      hint: 'run `backflow validate` to see them all',
    });
  }
}

/** A remote system (database, HTTP endpoint, SMTP server) failed. */
export class ProviderError extends BackflowError {
  readonly kind = 'provider' as const;
  readonly retryable: boolean;
  /** Stable machine code, e.g. `connection_refused`, `query_failed`. */
  readonly code: string;
  constructor(
    message: string,
    options: { code: string; retryable: boolean; hint?: string; cause?: unknown },
  ) {
    super(message, options);
    this.code = options.code;
    this.retryable = options.retryable;
  }
}

/** Another process holds the state lock. */
export class LockHeldError extends UserError {
  constructor(
    readonly lock: { id: string; who: string; operation: string; created: string },
    where: string,
  ) {
    super(
      `state is locked by ${lock.who} (${lock.operation}) since ${lock.created} [lock ID ${lock.id}] in ${where}`,
      { hint: `wait for it to finish, or if it is stale run \`backflow state unlock ${lock.id}\`` },
    );
  }
}

/** Something that should never happen: a defect in backflow. */
export class BugError extends BackflowError {
  readonly kind = 'bug' as const;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
