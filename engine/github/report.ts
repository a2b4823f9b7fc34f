// What `plan --github-comment`, `apply --github-comment` and the first sync after an apply post.
import { isAbsolute, posix, relative, resolve } from 'node:path';
import type { Octokit } from '@octokit/rest';
import {
  applyMarker,
  firstSyncMarker,
  planMarker,
  planSummaryText,
  renderApplyMarkdown,
  renderPlanFailureMarkdown,
  renderPlanMarkdown,
  renderRunMarkdown,
  truncateComment,
} from '../../cli/render/markdown.js';
import { type Diagnostic, hasErrors } from '../diagnostics.js';
import { UserError } from '../errors.js';
import type { Plan } from '../plan/types.js';
import type { AppliedFrom, StateDocument } from '../state/types.js';
import type { SyncRun } from '../sync/types.js';
import { createGitHubClient, gitHubError, redact } from './client.js';
import { upsertComment } from './comment.js';
import { type GitHubEnv, readGitHubEnv } from './env.js';
import { type CommitState, setPlanStatus } from './status.js';

export interface ReportPlanRequest {
  readonly plan: Plan;
  /** The config directory (`--dir`; default `plan.dir`): named relative to GITHUB_WORKSPACE in the comment and marker. */
  readonly dir?: string;
  /** Default: `readGitHubEnv('plan')` from process.env. */
  readonly env?: GitHubEnv;
  readonly title?: string;
  readonly signal?: AbortSignal;
}

export interface ReportPlanResult {
  /** The plan comment, or undefined when the run has no pull request (the status is still set). */
  readonly commentUrl: string | undefined;
  readonly pullRequest: number | undefined;
  readonly statusState: CommitState;
  /** The commit the status was set on. */
  readonly sha: string;
}

/** Posts (or updates) the plan comment on the pull request and sets the `backflow/plan` status. */
export async function reportPlan(req: ReportPlanRequest): Promise<ReportPlanResult> {
  const { plan } = req;
  const env = req.env ?? readGitHubEnv('plan');
  const dir = repoDir(req.dir ?? plan.dir, env);
  const sha = statusSha(env);
  const body = renderPlanMarkdown(plan, {
    dir,
    sha,
    ...(req.title ? { title: req.title } : {}),
    ...(env.runUrl ? { runUrl: env.runUrl } : {}),
  });
  const state: CommitState = hasErrors(plan.diagnostics) ? 'failure' : 'success';
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  const description = `${planSummaryText(plan.summary)}${errors > 0 ? `; ${errors} error${errors === 1 ? '' : 's'}` : ''}`;
  return post({ env, dir, sha, marker: planMarker(dir), body, state, description, signal: req.signal });
}

export interface ReportPlanFailureRequest {
  readonly dir: string;
  /** Default: `readGitHubEnv('plan')` from process.env. */
  readonly env?: GitHubEnv;
  /** The config's diagnostics (a ConfigError's), if that is why there is no plan. */
  readonly diagnostics?: readonly Diagnostic[];
  /** Any other reason (its message; must hold no secret). */
  readonly error?: string;
  readonly title?: string;
  readonly signal?: AbortSignal;
}

/** No plan could be made: the plan comment says why and the status fails, so a stale comment never stands. */
export async function reportPlanFailure(req: ReportPlanFailureRequest): Promise<ReportPlanResult> {
  const env = req.env ?? readGitHubEnv('plan');
  const dir = repoDir(req.dir, env);
  const sha = statusSha(env);
  const diagnostics = req.diagnostics ?? [];
  const body = renderPlanFailureMarkdown({
    dir,
    configDir: resolve(req.dir),
    diagnostics,
    sha,
    ...(req.error ? { error: req.error } : {}),
    ...(req.title ? { title: req.title } : {}),
    ...(env.runUrl ? { runUrl: env.runUrl } : {}),
  });
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const description =
    errors > 0 ? `configuration has ${errors} error${errors === 1 ? '' : 's'}` : 'no plan could be made';
  return post({
    env,
    dir,
    sha,
    marker: planMarker(dir),
    body,
    state: 'failure',
    description,
    signal: req.signal,
  });
}

export interface ReportApplyRequest {
  /** The plan that was applied (or whose apply failed). */
  readonly plan: Plan;
  /** Default `plan.dir`. */
  readonly dir?: string;
  /** Default: `readGitHubEnv('apply')` from process.env. */
  readonly env?: GitHubEnv;
  /**
   * The state after the apply: its serial is shown, and its `applied_from` names the pull request when it was
   * recorded for this commit (apply keeps an older apply's `applied_from`, which must not be reported on).
   */
  readonly state?: Pick<StateDocument, 'serial' | 'applied_from'>;
  /** The pull request, when already known (from findPullRequest); otherwise looked up. */
  readonly pullRequest?: number;
  /** The failure message, when the apply failed (no secrets). */
  readonly error?: string;
  readonly signal?: AbortSignal;
}

export interface ReportApplyResult {
  /** The pull request the apply came from (record it in the state for the first-sync reports); undefined if none. */
  readonly pullRequest: number | undefined;
  readonly commentUrl: string | undefined;
  /** The config directory as named in the comment markers (pass it to reportFirstSync). */
  readonly dir: string;
}

/**
 * Comments the apply's result on the pull request it came from: the event's `pull_request.number`, or for a
 * push (a merge to the default branch) the pull request associated with the pushed commit.
 */
export async function reportApply(req: ReportApplyRequest): Promise<ReportApplyResult> {
  const env = req.env ?? readGitHubEnv('apply');
  const dir = repoDir(req.dir ?? req.plan.dir, env);
  const octokit = createGitHubClient(env);
  const sha = appliedSha(env);
  const recorded = req.state?.applied_from;
  const pullRequest =
    req.pullRequest ??
    (recorded && recorded.sha === sha && recorded.repository === `${env.owner}/${env.repo}`
      ? recorded.pull_request
      : undefined) ??
    env.event?.pullRequest ??
    (sha ? await findMergedPullRequest({ octokit, env, sha, signal: req.signal }) : undefined);
  if (pullRequest === undefined) return { pullRequest, commentUrl: undefined, dir };
  const body = renderApplyMarkdown({
    plan: req.plan,
    dir,
    ...(sha ? { sha } : {}),
    ...(req.state ? { serial: req.state.serial } : {}),
    ...(req.error !== undefined ? { error: req.error } : {}),
    ...(env.runUrl ? { runUrl: env.runUrl } : {}),
  });
  const comment = await upsertComment({
    octokit,
    owner: env.owner,
    repo: env.repo,
    issueNumber: pullRequest,
    marker: applyMarker(dir),
    body: finalBody(body, env),
    token: env.token,
    ...(req.signal ? { signal: req.signal } : {}),
  });
  return { pullRequest, commentUrl: comment.url, dir };
}

/**
 * The pull request this apply comes from, for `applyPlan({ appliedFrom })` (so the agent can report first syncs):
 * the event's pull request, or for a push the pull request merged as the pushed commit. Undefined if none.
 */
export async function findPullRequest(
  req: { readonly env?: GitHubEnv; readonly signal?: AbortSignal } = {},
): Promise<Omit<AppliedFrom, 'mappings'> | undefined> {
  const env = req.env ?? readGitHubEnv('apply');
  const sha = appliedSha(env);
  const pullRequest =
    env.event?.pullRequest ??
    (sha
      ? await findMergedPullRequest({ octokit: createGitHubClient(env), env, sha, signal: req.signal })
      : undefined);
  if (pullRequest === undefined) return undefined;
  return { repository: `${env.owner}/${env.repo}`, pull_request: pullRequest, ...(sha ? { sha } : {}) };
}

export interface ReportFirstSyncRequest {
  readonly run: SyncRun;
  /** The pull request recorded by the apply (`state.applied_from.pull_request`). */
  readonly pullRequest: number;
  /** `owner/repo` recorded by the apply (`state.applied_from.repository`); default GITHUB_REPOSITORY. */
  readonly repository?: string;
  /** Default: `readGitHubEnv('report')` (GITHUB_TOKEN; GITHUB_REPOSITORY unless `repository` is given). */
  readonly env?: GitHubEnv;
  /** The directory reportApply returned (keeps two configs' comments apart); default `.`. */
  readonly dir?: string;
  readonly signal?: AbortSignal;
}

/** Comments a mapping's first sync after an apply (status, counts, top errors) on the apply's pull request. */
export async function reportFirstSync(req: ReportFirstSyncRequest): Promise<{ readonly commentUrl: string }> {
  const { run } = req;
  const env =
    req.env ??
    readGitHubEnv(
      'report',
      req.repository ? { ...process.env, GITHUB_REPOSITORY: req.repository } : process.env,
    );
  const [owner, repo] = req.repository?.includes('/') ? req.repository.split('/') : [env.owner, env.repo];
  const dir = req.dir ?? '.';
  const comment = await upsertComment({
    octokit: createGitHubClient(env),
    owner: owner!,
    repo: repo!,
    issueNumber: req.pullRequest,
    marker: firstSyncMarker(dir, run.mapping),
    body: finalBody(renderRunMarkdown(run, { dir }), env),
    token: env.token,
    ...(req.signal ? { signal: req.signal } : {}),
  });
  return { commentUrl: comment.url };
}

/** The mappings whose first sync after this plan's apply should be reported (created, changed or resynced). */
export function mappingsChangedBy(plan: Plan): string[] {
  const names = new Set<string>();
  for (const c of plan.changes) {
    if (c.action !== 'delete' && c.address.startsWith('mapping.'))
      names.add(c.address.slice('mapping.'.length));
    for (const e of c.effects) {
      if (e.kind === 'full_resync' || e.kind === 'mapping_enabled')
        names.add(e.mapping.replace(/^mapping\./, ''));
    }
  }
  return [...names].sort();
}

/** `--dir` as the repository names it: relative to GITHUB_WORKSPACE when inside it, so markers are stable. */
export function repoDir(dir: string, env: Pick<GitHubEnv, 'workspace'>): string {
  const abs = resolve(dir);
  const base = env.workspace ? resolve(env.workspace) : process.cwd();
  const rel = relative(base, abs);
  if (rel === '') return '.';
  if (!rel.startsWith('..') && !isAbsolute(rel)) return rel.split('\\').join('/');
  return posix.normalize(dir.split('\\').join('/')).replace(/(.)\/+$/, '$1');
}

// ── internals ───────────────────────────────────────────────────────────────

interface PostRequest {
  readonly env: GitHubEnv;
  readonly dir: string;
  readonly sha: string;
  readonly marker: string;
  readonly body: string;
  readonly state: CommitState;
  readonly description: string;
  readonly signal: AbortSignal | undefined;
}

/** The plan comment (when there is a pull request), then the status pointing at it. */
async function post(req: PostRequest): Promise<ReportPlanResult> {
  const { env, sha, signal } = req;
  const octokit = createGitHubClient(env);
  const pullRequest = env.event?.pullRequest ?? (await findOpenPullRequest({ octokit, env, sha, signal }));
  let commentUrl: string | undefined;
  if (pullRequest !== undefined) {
    const comment = await upsertComment({
      octokit,
      owner: env.owner,
      repo: env.repo,
      issueNumber: pullRequest,
      marker: req.marker,
      body: finalBody(req.body, env),
      token: env.token,
      ...(signal ? { signal } : {}),
    });
    commentUrl = comment.url;
  }
  const targetUrl = commentUrl ?? env.runUrl;
  await setPlanStatus({
    octokit,
    owner: env.owner,
    repo: env.repo,
    sha,
    state: req.state,
    description: redact(req.description, env.token),
    token: env.token,
    ...(targetUrl ? { targetUrl } : {}),
    ...(signal ? { signal } : {}),
  });
  return { commentUrl, pullRequest, statusState: req.state, sha };
}

/** The token never reaches a comment, and the body fits GitHub's limit. */
function finalBody(body: string, env: GitHubEnv): string {
  return truncateComment(redact(body, env.token));
}

/** The commit an apply ran on: the pushed commit, else the pull request head, else GITHUB_SHA. */
function appliedSha(env: GitHubEnv): string | undefined {
  return env.event?.after ?? env.event?.headSha ?? env.sha;
}

/** A pull request's status belongs on its head commit (GITHUB_SHA is the temporary merge commit). */
function statusSha(env: GitHubEnv): string {
  const sha = env.event?.headSha ?? env.sha;
  if (!sha) {
    throw new UserError('GITHUB_SHA is not set (needed for the backflow/plan status)', {
      hint: 'GitHub Actions sets it; read the environment with readGitHubEnv("plan")',
    });
  }
  return sha;
}

interface AssociatedPull {
  readonly number: number;
  readonly state: string;
  readonly merged_at: string | null;
  readonly merge_commit_sha: string | null;
  readonly head: { readonly sha: string };
  readonly base: { readonly ref: string };
}

interface LookupRequest {
  readonly octokit: Octokit;
  readonly env: GitHubEnv;
  readonly sha: string;
  readonly signal: AbortSignal | undefined;
}

async function associatedPulls(req: LookupRequest): Promise<readonly AssociatedPull[]> {
  const { octokit, env, sha } = req;
  try {
    const res = await octokit.rest.repos.listPullRequestsAssociatedWithCommit({
      owner: env.owner,
      repo: env.repo,
      commit_sha: sha,
      per_page: 100,
      request: req.signal ? { signal: req.signal } : {},
    });
    return res.data;
  } catch (e) {
    throw gitHubError(
      e,
      `find the pull request of commit ${sha.slice(0, 12)} in ${env.owner}/${env.repo}`,
      env.token,
    );
  }
}

/** The pull request a pushed commit was merged from: its merge commit first, then one merged into the default branch. */
async function findMergedPullRequest(req: LookupRequest): Promise<number | undefined> {
  const pulls = await associatedPulls(req);
  const defaultBranch = req.env.event?.defaultBranch;
  const pick =
    pulls.find((p) => p.merge_commit_sha === req.sha) ??
    pulls.find(
      (p) => p.merged_at !== null && (defaultBranch === undefined || p.base.ref === defaultBranch),
    ) ??
    pulls.find((p) => p.merged_at !== null) ??
    pulls[0];
  return pick?.number;
}

/** A plan run on a push (no pull request in the payload) comments on the open pull request whose head it is. */
async function findOpenPullRequest(req: LookupRequest): Promise<number | undefined> {
  const pulls = await associatedPulls(req);
  return pulls.find((p) => p.state === 'open' && p.head.sha === req.sha)?.number;
}
