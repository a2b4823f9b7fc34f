import type { RunSubscriber } from '../sync/after-run.js';

/**
 * After an apply that came from a pull request, the first finished sync of each mapping it changed
 * is reported on that pull request (once: the store remembers it).
 */
export const githubFirstSync: RunSubscriber = async ({ run, state, store, log }) => {
  const from = state?.applied_from;
  if (!from || run.status === 'in_progress' || !from.mappings.includes(run.mapping)) return;
  const key = `github.first_sync:${state.lineage}:${state.serial}:${run.mapping}`;
  if (await store.getMeta(key)) return;
  if (!process.env.GITHUB_TOKEN) {
    log(
      `note: not reporting the first sync of ${run.mapping} on pull request #${from.pull_request}: GITHUB_TOKEN is not set`,
    );
    return;
  }
  await store.setMeta(key, run.id); // at most once, even if posting fails below
  const { reportFirstSync } = await import('./report.js');
  const { commentUrl } = await reportFirstSync({
    run,
    pullRequest: from.pull_request,
    repository: from.repository,
  });
  log(`reported the first sync of ${run.mapping} on ${commentUrl}`);
};
