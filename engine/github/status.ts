import type { Octokit } from '@octokit/rest';
import { gitHubError } from './client.js';

export type CommitState = 'success' | 'failure' | 'error' | 'pending';

/** The status check users gate merges on (SPEC §7). */
export const PLAN_STATUS_CONTEXT = 'backflow/plan';

/** GitHub rejects a status description over 140 characters. */
export const STATUS_DESCRIPTION_LIMIT = 140;

export interface SetPlanStatusRequest {
  readonly octokit: Octokit;
  readonly owner: string;
  readonly repo: string;
  /** The commit: the pull request's head sha, else GITHUB_SHA. */
  readonly sha: string;
  readonly state: CommitState;
  /** Cut to 140 characters. */
  readonly description: string;
  /** Where "Details" leads: the plan comment, or the workflow run. */
  readonly targetUrl?: string;
  readonly context?: string;
  readonly token?: string;
  readonly signal?: AbortSignal;
}

/** Sets the `backflow/plan` commit status. */
export async function setPlanStatus(req: SetPlanStatusRequest): Promise<void> {
  const { octokit, owner, repo, sha } = req;
  const context = req.context ?? PLAN_STATUS_CONTEXT;
  try {
    await octokit.rest.repos.createCommitStatus({
      owner,
      repo,
      sha,
      state: req.state,
      context,
      description: clip(req.description, STATUS_DESCRIPTION_LIMIT),
      ...(req.targetUrl ? { target_url: req.targetUrl } : {}),
      request: req.signal ? { signal: req.signal } : {},
    });
  } catch (e) {
    throw gitHubError(
      e,
      `set the ${context} status on ${sha.slice(0, 12)} in ${owner}/${repo}`,
      req.token ?? '',
    );
  }
}

function clip(text: string, limit: number): string {
  const chars = Array.from(text.replace(/\s+/g, ' ').trim());
  return chars.length <= limit ? chars.join('') : `${chars.slice(0, limit - 1).join('')}…`;
}
