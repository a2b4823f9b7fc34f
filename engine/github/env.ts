import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';

/** What the GitHub reporting is for: plan and apply need the event payload and the commit; a sync report does not. */
export type GitHubPurpose = 'plan' | 'apply' | 'report';

/** The parts of an Actions event payload that backflow uses. */
export interface GitHubEvent {
  /** `pull_request.number` (or `issue.number` for a comment on a pull request). */
  readonly pullRequest: number | undefined;
  /** `pull_request.head.sha`: the commit a pull-request status belongs on (GITHUB_SHA is the merge commit). */
  readonly headSha: string | undefined;
  /** `repository.default_branch`. */
  readonly defaultBranch: string | undefined;
  /** `ref` of a push (`refs/heads/main`). */
  readonly ref: string | undefined;
  /** `after` of a push: the commit pushed. */
  readonly after: string | undefined;
}

/** The Actions environment, checked. The token is only ever handed to Octokit, never put in a message. */
export interface GitHubEnv {
  readonly token: string;
  readonly owner: string;
  readonly repo: string;
  /** GITHUB_API_URL without a trailing slash (GitHub Enterprise: `https://HOST/api/v3`). */
  readonly apiUrl: string;
  /** GITHUB_SHA (required for plan and apply). */
  readonly sha: string | undefined;
  readonly eventName: string | undefined;
  /** The parsed GITHUB_EVENT_PATH payload (required for plan and apply). */
  readonly event: GitHubEvent | undefined;
  /** GITHUB_WORKSPACE: the checkout, used to name a config directory relative to the repository. */
  readonly workspace: string | undefined;
  /** Link to the workflow run (GITHUB_SERVER_URL/…/actions/runs/GITHUB_RUN_ID), when known. */
  readonly runUrl: string | undefined;
}

type Vars = Readonly<Record<string, string | undefined>>;

const DEFAULT_API_URL = 'https://api.github.com';

/**
 * Reads and checks the Actions environment. A missing variable is a UserError naming it;
 * `report` (the agent's first-sync comment) needs only GITHUB_TOKEN and GITHUB_REPOSITORY.
 */
export function readGitHubEnv(purpose: GitHubPurpose, vars: Vars = process.env): GitHubEnv {
  const token = required(
    vars,
    'GITHUB_TOKEN',
    'in a workflow, pass `github-token` to the action or set GITHUB_TOKEN from the `github.token` context',
  );
  const repository = required(
    vars,
    'GITHUB_REPOSITORY',
    'set it to OWNER/REPO (GitHub Actions sets it for you)',
  );
  const match = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repository);
  if (!match) {
    throw new UserError(`GITHUB_REPOSITORY must be OWNER/REPO, got ${JSON.stringify(repository)}`, {
      hint: 'for example `acme/warehouse-syncs`',
    });
  }
  const apiUrl = checkApiUrl(vars.GITHUB_API_URL?.trim() || DEFAULT_API_URL);
  let sha = vars.GITHUB_SHA?.trim() || undefined;
  let event: GitHubEvent | undefined;
  const eventPath = vars.GITHUB_EVENT_PATH?.trim() || undefined;
  if (purpose !== 'report') {
    sha = required(vars, 'GITHUB_SHA', 'GitHub Actions sets it to the commit the workflow runs on');
    event = readEvent(
      required(vars, 'GITHUB_EVENT_PATH', 'GitHub Actions sets it to the event payload file'),
    );
  } else if (eventPath) {
    event = readEvent(eventPath);
  }
  const server = vars.GITHUB_SERVER_URL?.trim().replace(/\/+$/, '');
  const runId = vars.GITHUB_RUN_ID?.trim();
  return {
    token,
    owner: match[1]!,
    repo: match[2]!,
    apiUrl,
    sha,
    eventName: vars.GITHUB_EVENT_NAME?.trim() || undefined,
    event,
    workspace: vars.GITHUB_WORKSPACE?.trim() || undefined,
    runUrl: server && runId ? `${server}/${match[1]}/${match[2]}/actions/runs/${runId}` : undefined,
  };
}

/** Parses an event payload (exported for tests and for callers that hold the JSON already). */
export function parseEvent(payload: unknown): GitHubEvent {
  const p = asRecord(payload);
  const pr = asRecord(p.pull_request);
  const issue = asRecord(p.issue);
  const prNumber = num(pr.number);
  // A comment on a pull request arrives as an issue with a `pull_request` link.
  const issuePr = issue.pull_request ? num(issue.number) : undefined;
  return {
    pullRequest: prNumber ?? issuePr,
    headSha: str(asRecord(pr.head).sha),
    defaultBranch: str(asRecord(p.repository).default_branch),
    ref: str(p.ref),
    after: str(p.after),
  };
}

function readEvent(path: string): GitHubEvent {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the event payload GITHUB_EVENT_PATH=${path}`, {
      hint: 'GitHub Actions sets GITHUB_EVENT_PATH; outside Actions point it at a JSON payload file',
      cause: e,
    });
  }
  try {
    return parseEvent(JSON.parse(text));
  } catch (e) {
    throw new UserError(`the event payload GITHUB_EVENT_PATH=${path} is not valid JSON`, { cause: e });
  }
}

function required(vars: Vars, name: string, hint: string): string {
  const value = vars[name]?.trim();
  if (!value) throw new UserError(`${name} is not set (needed for --github-comment)`, { hint });
  return value;
}

function checkApiUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UserError(`GITHUB_API_URL is not a URL: ${JSON.stringify(raw)}`, {
      hint: 'for example https://api.github.com or https://github.example.com/api/v3',
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UserError(`GITHUB_API_URL must be http(s), got ${url.protocol}`);
  }
  return raw.replace(/\/+$/, '');
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
