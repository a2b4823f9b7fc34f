import type { Octokit } from '@octokit/rest';
import { gitHubError } from './client.js';

/** One comment per marker: found again on later runs and updated in place. */
export interface UpsertCommentRequest {
  readonly octokit: Octokit;
  readonly owner: string;
  readonly repo: string;
  /** The pull request (GitHub's issue number). */
  readonly issueNumber: number;
  /** A hidden HTML comment (`<!-- backflow:plan dir="." -->`) that opens the comment; prepended when the body does not start with it. */
  readonly marker: string;
  readonly body: string;
  /** Only for error messages: scrubbed from any text GitHub sends back. */
  readonly token?: string;
  readonly signal?: AbortSignal;
}

export interface UpsertCommentResult {
  readonly id: number;
  /** The comment's web address (`html_url`). */
  readonly url: string;
  readonly action: 'created' | 'updated' | 'unchanged';
}

/** Lists the issue's comments (every page), updates the one carrying the marker, or creates it. */
export async function upsertComment(req: UpsertCommentRequest): Promise<UpsertCommentResult> {
  const { octokit, owner, repo, issueNumber, marker, token = '' } = req;
  // The marker opens the body, so a comment that merely quotes it (a reply) is never taken for ours.
  const body = req.body.startsWith(marker) ? req.body : `${marker}\n${req.body}`;
  const request = req.signal ? { signal: req.signal } : {};

  let existing: { id: number; html_url: string; body?: string | undefined } | undefined;
  try {
    const pages = octokit.paginate.iterator(octokit.rest.issues.listComments, {
      owner,
      repo,
      issue_number: issueNumber,
      per_page: 100,
      request,
    });
    outer: for await (const page of pages) {
      for (const c of page.data) {
        if (c.body?.trimStart().startsWith(marker)) {
          existing = c;
          break outer;
        }
      }
    }
  } catch (e) {
    throw gitHubError(e, `list the comments of pull request #${issueNumber} in ${owner}/${repo}`, token);
  }

  if (existing) {
    if (existing.body === body) return { id: existing.id, url: existing.html_url, action: 'unchanged' };
    try {
      const res = await octokit.rest.issues.updateComment({
        owner,
        repo,
        comment_id: existing.id,
        body,
        request,
      });
      return { id: res.data.id, url: res.data.html_url, action: 'updated' };
    } catch (e) {
      throw gitHubError(
        e,
        `update comment ${existing.id} on pull request #${issueNumber} in ${owner}/${repo}`,
        token,
      );
    }
  }
  try {
    const res = await octokit.rest.issues.createComment({
      owner,
      repo,
      issue_number: issueNumber,
      body,
      request,
    });
    return { id: res.data.id, url: res.data.html_url, action: 'created' };
  } catch (e) {
    throw gitHubError(e, `comment on pull request #${issueNumber} in ${owner}/${repo}`, token);
  }
}
