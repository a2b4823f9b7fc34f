import { Octokit } from '@octokit/rest';
import { ProviderError } from '../errors.js';
import type { GitHubEnv } from './env.js';

/** An Octokit pointed at GITHUB_API_URL. No retry or throttling plugins: a CI step fails fast and says why. */
export function createGitHubClient(env: Pick<GitHubEnv, 'token' | 'apiUrl'>): Octokit {
  const quiet = () => {};
  return new Octokit({
    auth: env.token,
    baseUrl: env.apiUrl,
    userAgent: 'backflow',
    // The engine never writes to the console; failures surface as GitHubApiError.
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
  });
}

/** GitHub answered with an error (or could not be reached). Carries GitHub's own message and the HTTP status. */
export class GitHubApiError extends ProviderError {
  /** HTTP status (0 when GitHub could not be reached). */
  readonly status: number;
  /** GitHub's `documentation_url`, when it sent one. */
  readonly documentationUrl: string | undefined;
  constructor(
    message: string,
    options: { status: number; documentationUrl?: string; hint?: string; cause?: unknown },
  ) {
    super(message, {
      code: codeFor(options.status),
      retryable: options.status === 0 || options.status === 429 || options.status >= 500,
      hint: options.hint,
      cause: options.cause,
    });
    this.status = options.status;
    this.documentationUrl = options.documentationUrl;
  }
}

/**
 * Wraps an Octokit failure of `what` (e.g. "create the pull-request comment") into a GitHubApiError with
 * GitHub's message and status, and a hint saying who must act. The token is scrubbed from the text.
 */
export function gitHubError(e: unknown, what: string, token: string): GitHubApiError {
  const status =
    typeof (e as { status?: unknown })?.status === 'number' ? (e as { status: number }).status : 0;
  const data = (e as { response?: { data?: unknown } })?.response?.data;
  const body = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
  const ghMessage =
    typeof body.message === 'string'
      ? body.message + validationDetails(body.errors)
      : e instanceof Error
        ? e.message
        : String(e);
  const documentationUrl = typeof body.documentation_url === 'string' ? body.documentation_url : undefined;
  const message = redact(`GitHub API: cannot ${what}: ${status || 'request failed'} ${ghMessage}`, token);
  return new GitHubApiError(message, {
    status,
    ...(documentationUrl ? { documentationUrl } : {}),
    hint: hintFor(status),
    cause: e,
  });
}

/** Replaces every occurrence of the token (and `user:password@` in URLs) so no message can leak it. */
export function redact(text: string, token: string | undefined): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:)[^@\s/]+@/gi, '$1***@');
  if (token && token.length >= 4) out = out.split(token).join('***');
  return out;
}

function validationDetails(errors: unknown): string {
  if (!Array.isArray(errors) || errors.length === 0) return '';
  const parts = errors.map((err) => {
    const r = typeof err === 'object' && err !== null ? (err as Record<string, unknown>) : {};
    if (typeof r.message === 'string') return r.message;
    return [r.resource, r.field, r.code].filter((x) => typeof x === 'string').join(' ');
  });
  return `: ${parts.filter(Boolean).join('; ')}`;
}

function codeFor(status: number): string {
  switch (status) {
    case 0:
      return 'github_unreachable';
    case 401:
      return 'github_unauthorized';
    case 403:
      return 'github_forbidden';
    case 404:
      return 'github_not_found';
    case 422:
      return 'github_validation_failed';
    default:
      return status >= 500 ? 'github_server_error' : 'github_request_failed';
  }
}

function hintFor(status: number): string | undefined {
  switch (status) {
    case 0:
      return 'check GITHUB_API_URL and the network';
    case 401:
      return 'GITHUB_TOKEN is invalid or expired; in a workflow use the `github.token` context';
    case 403:
      return 'the token lacks permission: give the workflow `permissions: pull-requests: write, statuses: write, contents: read` (pull requests from forks get a read-only token)';
    case 404:
      return 'check GITHUB_REPOSITORY and that the token can see the repository (and the pull request)';
    case 422:
      return 'GitHub rejected the request content';
    default:
      return undefined;
  }
}
