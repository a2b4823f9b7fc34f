import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GITHUB_COMMENT_LIMIT, renderPlanMarkdown, truncateComment } from '../../cli/render/markdown.js';
import type { Diagnostic } from '../../engine/diagnostics.js';
import { UserError } from '../../engine/errors.js';
import { GitHubApiError } from '../../engine/github/client.js';
import { type GitHubEnv, readGitHubEnv } from '../../engine/github/env.js';
import {
  findPullRequest,
  mappingsChangedBy,
  reportApply,
  reportFirstSync,
  reportPlan,
  reportPlanFailure,
} from '../../engine/github/report.js';
import type { Plan, ResourceChange } from '../../engine/plan/types.js';
import type { SyncRun } from '../../engine/sync/types.js';
import { type GitHubServer, startGitHubServer } from '../harness/github-server.js';

const OWNER = 'acme';
const REPO = 'warehouse-syncs';
const HEAD_SHA = 'a'.repeat(40);
const MERGE_SHA = 'b'.repeat(40);
const PUSH_SHA = 'c'.repeat(40);
const WORKSPACE = '/home/runner/work/warehouse-syncs';

let gh: GitHubServer;
let tmp: string;

beforeAll(async () => {
  gh = await startGitHubServer({ prefix: '/api/v3', repos: [`${OWNER}/${REPO}`] });
  tmp = mkdtempSync(join(tmpdir(), 'backflow-gh-'));
});
afterAll(async () => {
  await gh.close();
});
beforeEach(() => gh.reset());

function eventFile(name: string, payload: unknown): string {
  const path = join(tmp, `${name}.json`);
  writeFileSync(path, JSON.stringify(payload));
  return path;
}

const prEvent = (number = 7) => ({
  action: 'synchronize',
  number,
  pull_request: { number, head: { sha: HEAD_SHA, ref: 'feature' }, base: { ref: 'main' } },
  repository: { full_name: `${OWNER}/${REPO}`, default_branch: 'main' },
});

function vars(over: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    GITHUB_TOKEN: gh.token,
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_EVENT_PATH: eventFile('pr', prEvent()),
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_SHA: MERGE_SHA,
    GITHUB_API_URL: gh.url,
    GITHUB_WORKSPACE: WORKSPACE,
    GITHUB_SERVER_URL: 'https://github.test',
    GITHUB_RUN_ID: '4242',
    ...over,
  };
}

const envFor = (
  purpose: 'plan' | 'apply' | 'report',
  over: Record<string, string | undefined> = {},
): GitHubEnv => readGitHubEnv(purpose, vars(over));

function change(
  address: string,
  action: ResourceChange['action'],
  extra: Partial<ResourceChange> = {},
): ResourceChange {
  return {
    address,
    action,
    before: action === 'create' ? null : { sql: 'select id, email from users' },
    after: action === 'delete' ? null : { sql: 'select id, email, name from users', primary_key: 'id' },
    diff:
      action === 'update'
        ? [{ path: 'sql', before: 'select id, email from users', after: 'select id, email, name from users' }]
        : [],
    effects: [],
    ...extra,
  };
}

function plan(
  changes: readonly ResourceChange[],
  diagnostics: readonly Diagnostic[] = [],
  extra: Partial<Plan> = {},
): Plan {
  return {
    format_version: '1.0',
    created_at: '2025-01-02T03:04:05.000Z',
    state: { serial: 3, lineage: '5f0c1d2e-aaaa-bbbb-cccc-123456789abc' },
    changes,
    summary: {
      create: changes.filter((c) => c.action === 'create').length,
      update: changes.filter((c) => c.action === 'update').length,
      delete: changes.filter((c) => c.action === 'delete').length,
    },
    resources: [],
    diagnostics,
    dir: `${WORKSPACE}/configs/prod`,
    ...extra,
  };
}

const basicPlan = () =>
  plan(
    [
      change('model.active_users', 'update', {
        effects: [
          { kind: 'full_resync', mapping: 'users_to_crm', reason: 'model sql changed', records: 12345 },
        ],
      }),
      change('mapping.users_to_crm', 'update', {
        diff: [{ path: 'enabled', before: true, after: false }],
        effects: [{ kind: 'mapping_disabled', mapping: 'users_to_crm' }],
      }),
      change('segment.vip', 'delete', {
        reason: 'segment.vip is no longer in the configuration',
        effects: [{ kind: 'delete_segment', segment: 'vip', integration: 'export_vips' }],
      }),
      change('destination.crm', 'create'),
    ],
    [],
    {
      health: [
        { mapping: 'users_to_crm', status: 'failed', started_at: '2025-01-01T10:00:00Z', run_id: 'run_01' },
      ],
    },
  );

/** A fence or `<details>` left open would swallow the rest of the page. */
function expectBalanced(body: string) {
  let fence: string | undefined;
  let details = 0;
  for (const line of body.split('\n')) {
    const m = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence) {
      if (m && m[1]!.startsWith(fence) && m[2]!.trim() === '') fence = undefined;
      continue;
    }
    if (m) {
      fence = m[1]!;
      continue;
    }
    details += (line.match(/<details\b/g) ?? []).length - (line.match(/<\/details>/g) ?? []).length;
    expect(details).toBeGreaterThanOrEqual(0);
  }
  expect(fence).toBeUndefined();
  expect(details).toBe(0);
}

describe('plan comment', () => {
  it('renders summary, effects, health outside the details and the diff inside', () => {
    const body = renderPlanMarkdown(basicPlan(), { dir: 'configs/prod' });
    const detailsAt = body.indexOf('<details>');
    expect(body.startsWith('<!-- backflow:plan dir="configs/prod" -->\n')).toBe(true);
    expect(body.indexOf('**Plan: 1 to create, 2 to update, 1 to delete.**')).toBeLessThan(detailsAt);
    expect(
      body.indexOf(
        '**Full resync** of `mapping.users_to_crm`: its next sync sends all **12,345 records** (model sql changed)',
      ),
    ).toBeLessThan(detailsAt);
    expect(body.indexOf('**Segment deleted downstream**: `segment.vip`')).toBeLessThan(detailsAt);
    expect(body.indexOf('**Mapping disabled**: `mapping.users_to_crm`')).toBeLessThan(detailsAt);
    expect(
      body.indexOf('| `mapping.users_to_crm` | ❌ failed | 2025-01-01 10:00 UTC | `run_01` |'),
    ).toBeLessThan(detailsAt);
    const diff = body.slice(detailsAt);
    expect(diff).toContain(
      '```diff\n~ model.active_users\n~     sql: "select id, email from users" -> "select id, email, name from users"',
    );
    expect(diff).toContain('~     enabled: true -> false');
    expect(diff).toContain('- segment.vip\n      # (because segment.vip is no longer in the configuration)');
    expect(diff).toContain('+ destination.crm\n+     sql = "select id, email, name from users"');
    expectBalanced(body);
  });

  it('keeps a value holding backticks inside the diff fence', () => {
    const p = plan([
      change('model.x', 'update', {
        diff: [{ path: 'sql', before: 'a', after: 'select "```" </details> @octocat' }],
      }),
    ]);
    const body = renderPlanMarkdown(p, { dir: '.' });
    expect(body).toContain('````diff');
    expectBalanced(body);
  });

  it('posts one comment per pull request and directory, updated in place on later pushes', async () => {
    // 40 earlier comments: the plan comment lands on the second page of 30 and must be found there.
    for (let i = 0; i < 40; i++) gh.seedComment(OWNER, REPO, 7, `LGTM ${i}`);
    const first = await reportPlan({
      plan: basicPlan(),
      dir: `${WORKSPACE}/configs/prod`,
      env: envFor('plan'),
    });
    expect(first.pullRequest).toBe(7);
    expect(first.statusState).toBe('success');

    const second = plan([change('model.active_users', 'update')]);
    const again = await reportPlan({ plan: second, dir: `${WORKSPACE}/configs/prod`, env: envFor('plan') });
    expect(again.commentUrl).toBe(first.commentUrl);

    const ours = gh.comments(OWNER, REPO, 7).filter((c) => c.body.includes('backflow:plan'));
    expect(ours).toHaveLength(1);
    expect(ours[0]!.body).toContain('**Plan: 0 to create, 1 to update, 0 to delete.**');
    expect(gh.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/comments'))).toHaveLength(1);
    expect(gh.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
    // Every request authenticated, with backflow's user agent.
    expect(gh.requests.every((r) => r.authorization === `token ${gh.token}`)).toBe(true);
    expect(gh.requests[0]!.userAgent).toMatch(/^backflow/);

    // Another config directory in the same repository gets its own comment.
    await reportPlan({ plan: second, dir: `${WORKSPACE}/configs/staging`, env: envFor('plan') });
    const all = gh.comments(OWNER, REPO, 7).filter((c) => c.body.includes('backflow:plan'));
    expect(all.map((c) => c.body.split('\n')[0])).toEqual([
      '<!-- backflow:plan dir="configs/prod" -->',
      '<!-- backflow:plan dir="configs/staging" -->',
    ]);
  });

  it('never takes a comment that only quotes the marker for its own', async () => {
    gh.seedComment(OWNER, REPO, 7, `Why does it say\n> <!-- backflow:plan dir="." -->\nhere?`);
    await reportPlan({ plan: basicPlan(), dir: WORKSPACE, env: envFor('plan') });
    const comments = gh.comments(OWNER, REPO, 7);
    expect(comments).toHaveLength(2);
    expect(comments[0]!.body.startsWith('Why')).toBe(true);
  });

  it('sets backflow/plan on the pull request head with the summary, failure when diagnostics have errors', async () => {
    await reportPlan({ plan: basicPlan(), dir: WORKSPACE, env: envFor('plan') });
    const ok = gh.statuses(OWNER, REPO, HEAD_SHA);
    expect(ok).toHaveLength(1);
    expect(ok[0]).toMatchObject({
      context: 'backflow/plan',
      state: 'success',
      description: '1 to create, 2 to update, 1 to delete',
    });
    expect(ok[0]!.target_url).toMatch(/#issuecomment-\d+$/);
    expect(gh.statuses(OWNER, REPO, MERGE_SHA)).toHaveLength(0);

    const bad = plan(
      [change('model.active_users', 'update')],
      [
        {
          severity: 'error',
          code: 'query_failed',
          summary: 'model.active_users: query failed: column "nmae" does not exist',
          detail: 'connect postgres://etl:hunter2@db/warehouse',
          address: 'model.active_users',
          file: `${WORKSPACE}/configs/prod/models.yaml`,
          line: 4,
          column: 5,
        },
      ],
    );
    const res = await reportPlan({ plan: bad, dir: `${WORKSPACE}/configs/prod`, env: envFor('plan') });
    expect(res.statusState).toBe('failure');
    const last = gh.statuses(OWNER, REPO, HEAD_SHA).at(-1)!;
    expect(last).toMatchObject({
      state: 'failure',
      description: '0 to create, 1 to update, 0 to delete; 1 error',
    });
    const body = gh.comments(OWNER, REPO, 7).find((c) => c.body.includes('dir="configs/prod"'))!.body;
    const caution = body.indexOf('[!CAUTION]');
    expect(caution).toBeGreaterThan(0);
    expect(caution).toBeLessThan(body.indexOf('**Plan:'));
    expect(body).toContain('`configs/prod/models.yaml:4:5`');
    expect(body).not.toContain('hunter2');
  });

  it('cuts an oversized plan within 65,536 characters, keeping the summary and the end', async () => {
    const changes = Array.from({ length: 3000 }, (_, i) =>
      change(`mapping.m_${String(i).padStart(4, '0')}`, 'update', {
        diff: [
          { path: 'fields.email', before: 'email', after: { column: 'email_address' } },
          { path: 'batch_size', before: 500, after: 1000 },
        ],
        effects: [{ kind: 'full_resync', mapping: `m_${i}`, reason: 'fields changed', records: 10 }],
      }),
    );
    const big = plan(changes);
    expect(renderPlanMarkdown(big, { dir: '.' }).length).toBeGreaterThan(GITHUB_COMMENT_LIMIT);

    await reportPlan({ plan: big, dir: WORKSPACE, env: envFor('plan') });
    const body = gh.comments(OWNER, REPO, 7)[0]!.body;
    expect(body.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
    expect(body).toContain('**Plan: 0 to create, 3000 to update, 0 to delete.**');
    expect(body).toContain('**3,000 mappings will fully resync**, sending **30,000 records**');
    expect(body).toMatch(/cut here to fit GitHub's 65,536-character comment limit/);
    expect(body).toContain('~ mapping.m_2999'); // the end of the diff survives
    expect(body.trimEnd().endsWith('</sub>')).toBe(true);
    expectBalanced(body);
    expect(gh.statuses(OWNER, REPO, HEAD_SHA)[0]!.description).toBe(
      '0 to create, 3000 to update, 0 to delete',
    );
  });

  it('comments the reason when no plan could be made', async () => {
    const res = await reportPlanFailure({
      dir: WORKSPACE,
      env: envFor('plan'),
      diagnostics: [
        {
          severity: 'error',
          code: 'unknown_field',
          summary: 'unknown field `primry_key`',
          detail: 'did you mean `primary_key`?',
          file: `${WORKSPACE}/models.yaml`,
          line: 2,
          column: 3,
        },
      ],
    });
    expect(res.statusState).toBe('failure');
    expect(gh.statuses(OWNER, REPO, HEAD_SHA)[0]).toMatchObject({
      state: 'failure',
      description: 'configuration has 1 error',
    });
    const body = gh.comments(OWNER, REPO, 7)[0]!.body;
    expect(body).toContain('`models.yaml:2:3`');
    expect(body).toContain('No plan: the configuration has 1 error');
  });
});

describe('truncateComment', () => {
  it('returns a body within the limit unchanged', () => {
    expect(truncateComment('hello', 10)).toBe('hello');
  });

  it('closes and reopens a details block and fence it cuts across', () => {
    const lines = ['# title', 'summary', '', '<details><summary>Diff</summary>', '', '```diff'];
    for (let i = 0; i < 500; i++) lines.push(`+ resource.r${i}`);
    lines.push(
      '```',
      '',
      '</details>',
      '',
      'after the diff',
      ...Array.from({ length: 100 }, (_, i) => `footer line ${i}`),
    );
    const body = lines.join('\n');
    const cut = truncateComment(body, 3000);
    expect(cut.length).toBeLessThanOrEqual(3000);
    expect(cut.startsWith('# title\nsummary')).toBe(true);
    expect(cut.endsWith('footer line 99')).toBe(true);
    expect(cut).toContain('cut here');
    expectBalanced(cut);
  });

  it('keeps the note inside a fence the head and tail share', () => {
    const body = ['top', '```diff', ...Array.from({ length: 2000 }, (_, i) => `+ r${i}`), '```', 'end'].join(
      '\n',
    );
    const cut = truncateComment(body, 4000);
    expect(cut.length).toBeLessThanOrEqual(4000);
    expect(cut).toMatch(/\n@@ ✂ [\d,]+ lines \([\d,]+ characters\) cut here/);
    expect(cut.endsWith('```\nend')).toBe(true);
    expectBalanced(cut);
  });
});

describe('apply comment', () => {
  it('finds the pull request of a push to the default branch via commits/{sha}/pulls', async () => {
    gh.setCommitPulls(OWNER, REPO, PUSH_SHA, [
      { number: 3, merged_at: null, state: 'open', head_sha: PUSH_SHA, base_ref: 'release' },
      { number: 12, merged_at: '2025-01-02T00:00:00Z', merge_commit_sha: PUSH_SHA, base_ref: 'main' },
    ]);
    const push = eventFile('push', {
      ref: 'refs/heads/main',
      after: PUSH_SHA,
      repository: { full_name: `${OWNER}/${REPO}`, default_branch: 'main' },
    });
    const env = envFor('apply', { GITHUB_EVENT_PATH: push, GITHUB_EVENT_NAME: 'push', GITHUB_SHA: PUSH_SHA });
    const p = basicPlan();
    const res = await reportApply({ plan: p, dir: `${WORKSPACE}/configs/prod`, env, state: { serial: 4 } });
    expect(res).toMatchObject({ pullRequest: 12, dir: 'configs/prod' });
    expect(
      gh.requests.some(
        (r) => r.method === 'GET' && r.url.startsWith(`/repos/${OWNER}/${REPO}/commits/${PUSH_SHA}/pulls`),
      ),
    ).toBe(true);
    const body = gh.comments(OWNER, REPO, 12)[0]!.body;
    expect(body).toContain('<!-- backflow:apply dir="configs/prod" -->');
    expect(body).toContain(
      '**Applied: 1 created, 2 updated, 1 deleted** at commit ccccccc. State serial is now **4**.',
    );
    expect(body).toContain('first sync of each changed mapping will be reported');
    expect(mappingsChangedBy(p)).toEqual(['users_to_crm']);
  });

  it('finds the pull request to record in the state before the apply', async () => {
    gh.setCommitPulls(OWNER, REPO, PUSH_SHA, [
      { number: 12, merged_at: '2025-01-02T00:00:00Z', merge_commit_sha: PUSH_SHA },
    ]);
    const push = eventFile('push2', {
      ref: 'refs/heads/main',
      after: PUSH_SHA,
      repository: { default_branch: 'main' },
    });
    const env = envFor('apply', { GITHUB_EVENT_PATH: push, GITHUB_EVENT_NAME: 'push', GITHUB_SHA: PUSH_SHA });
    expect(await findPullRequest({ env })).toEqual({
      repository: `${OWNER}/${REPO}`,
      pull_request: 12,
      sha: PUSH_SHA,
    });
    // With the pull request recorded in the state, the report does not look it up again.
    gh.reset();
    const res = await reportApply({
      plan: basicPlan(),
      env,
      state: {
        serial: 4,
        applied_from: { repository: `${OWNER}/${REPO}`, pull_request: 12, sha: PUSH_SHA, mappings: [] },
      },
    });
    expect(res.pullRequest).toBe(12);
    expect(gh.requests.some((r) => r.url.includes('/commits/'))).toBe(false);

    // An applied_from kept from an older apply (another commit) is not this apply's pull request.
    gh.reset();
    const stale = await reportApply({
      plan: basicPlan(),
      env,
      state: {
        serial: 5,
        applied_from: { repository: `${OWNER}/${REPO}`, pull_request: 9, sha: HEAD_SHA, mappings: [] },
      },
    });
    expect(stale.pullRequest).toBeUndefined();
    expect(gh.comments(OWNER, REPO, 9)).toHaveLength(0);
  });

  it('uses the pull request of a pull_request event, and reports none for a direct push', async () => {
    const res = await reportApply({ plan: basicPlan(), dir: WORKSPACE, env: envFor('apply') });
    expect(res.pullRequest).toBe(7);
    expect(gh.requests.some((r) => r.url.includes('/commits/'))).toBe(false);

    const push = eventFile('direct', {
      ref: 'refs/heads/main',
      after: PUSH_SHA,
      repository: { default_branch: 'main' },
    });
    const none = await reportApply({
      plan: basicPlan(),
      dir: WORKSPACE,
      env: envFor('apply', { GITHUB_EVENT_PATH: push, GITHUB_SHA: PUSH_SHA }),
    });
    expect(none).toMatchObject({ pullRequest: undefined, commentUrl: undefined });
  });

  it('reports a failed apply', async () => {
    await reportApply({
      plan: basicPlan(),
      dir: WORKSPACE,
      env: envFor('apply'),
      error: 'state is locked by ci (apply)',
    });
    const body = gh.comments(OWNER, REPO, 7)[0]!.body;
    expect(body).toContain('❌ backflow apply failed');
    expect(body).toContain('state is locked by ci (apply)');
  });
});

describe('first-sync report', () => {
  const run: SyncRun = {
    id: 'run_77',
    mapping: 'users_to_crm',
    model: 'active_users',
    source: 'warehouse',
    destination: 'crm',
    action: 'upsert',
    status: 'partial_success',
    trigger: 'apply',
    started_at: '2025-01-02T10:00:00.000Z',
    finished_at: '2025-01-02T10:00:12.500Z',
    duration_ms: 12_500,
    extract: { total: 1200, added: 1000, updated: 150, deleted: 50 },
    load: {
      attempted: 1200,
      succeeded: 1150,
      failed: 50,
      added: { succeeded: 960, failed: 40 },
      updated: { succeeded: 140, failed: 10 },
      deleted: { succeeded: 50, failed: 0 },
    },
    errors: [
      {
        code: 'invalid_email',
        message: 'email is not valid',
        records: 40,
        recommended_action: 'Fix the email column in model active_users',
        sample_payloads: [{ email: 'jane@example' }],
      },
      {
        code: 'too_long',
        message: 'name longer than 255',
        records: 10,
        recommended_action: 'Truncate name in the model SQL',
        sample_payloads: [],
      },
    ],
  };

  it('comments the run on the pull request, needing only token and repository', async () => {
    const env = readGitHubEnv('report', {
      GITHUB_TOKEN: gh.token,
      GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
      GITHUB_API_URL: gh.url,
    });
    const { commentUrl } = await reportFirstSync({ run, pullRequest: 12, env, dir: 'configs/prod' });
    expect(commentUrl).toMatch(/pull\/12#issuecomment-/);
    const body = gh.comments(OWNER, REPO, 12)[0]!.body;
    expect(body).toContain('⚠️ First sync of `users_to_crm`: partial success');
    expect(body).toContain('| **total** | **1,200** rows | **1,150** of 1,200 | **50** |');
    expect(body.indexOf('`invalid_email`')).toBeLessThan(body.indexOf('`too_long`'));
    expect(body).toContain('**Recommended action:** Fix the email column in model active\\_users');
    expect(body).not.toContain('jane@example'); // sample payloads (user data) stay out of the PR
    expect(body).toContain('`backflow syncs show run_77`');

    // A re-run of the report updates the same comment.
    await reportFirstSync({ run: { ...run, status: 'success' }, pullRequest: 12, env, dir: 'configs/prod' });
    expect(gh.comments(OWNER, REPO, 12)).toHaveLength(1);
  });
});

describe('errors', () => {
  it('reports 401 with GitHub message and status, never the token', async () => {
    const env = envFor('plan', { GITHUB_TOKEN: 'ghp_wrongtoken_secretvalue' });
    const err = await reportPlan({ plan: basicPlan(), dir: WORKSPACE, env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitHubApiError);
    const e = err as GitHubApiError;
    expect(e.status).toBe(401);
    expect(e.code).toBe('github_unauthorized');
    expect(e.message).toContain('Bad credentials');
    expect(`${e.message} ${e.hint} ${e.stack}`).not.toContain('secretvalue');
  });

  it('reports 403 and 422 with GitHub message', async () => {
    gh.fail({
      status: 403,
      message: 'Resource not accessible by integration',
      method: 'POST',
      path: /\/comments$/,
    });
    const forbidden = await reportPlan({ plan: basicPlan(), dir: WORKSPACE, env: envFor('plan') }).catch(
      (e: unknown) => e,
    );
    expect(forbidden).toMatchObject({ status: 403, code: 'github_forbidden' });
    expect((forbidden as Error).message).toContain('Resource not accessible by integration');
    expect((forbidden as GitHubApiError).hint).toContain('pull-requests: write');

    gh.fail({
      status: 422,
      message: 'Validation Failed',
      path: /\/statuses\//,
      errors: [{ resource: 'Status', code: 'custom', field: 'sha', message: 'No commit found for SHA' }],
    });
    const invalid = await reportPlan({ plan: basicPlan(), dir: WORKSPACE, env: envFor('plan') }).catch(
      (e: unknown) => e,
    );
    expect(invalid).toMatchObject({ status: 422, code: 'github_validation_failed' });
    expect((invalid as Error).message).toContain('Validation Failed: No commit found for SHA');
  });

  it('reports 404 for an unknown repository', async () => {
    const err = await reportApply({
      plan: basicPlan(),
      dir: WORKSPACE,
      env: envFor('apply', { GITHUB_REPOSITORY: 'acme/nope' }),
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 404 });
    expect((err as Error).message).toContain('Not Found');
  });

  it.each(['GITHUB_TOKEN', 'GITHUB_REPOSITORY', 'GITHUB_EVENT_PATH', 'GITHUB_SHA'])(
    'names a missing %s',
    (name) => {
      expect(() => readGitHubEnv('plan', vars({ [name]: undefined }))).toThrow(UserError);
      expect(() => readGitHubEnv('plan', vars({ [name]: '' }))).toThrow(new RegExp(`^${name} is not set`));
    },
  );

  it('rejects a malformed repository or event file without echoing the token', () => {
    expect(() => readGitHubEnv('plan', vars({ GITHUB_REPOSITORY: 'just-a-name' }))).toThrow(/OWNER\/REPO/);
    expect(() => readGitHubEnv('plan', vars({ GITHUB_EVENT_PATH: join(tmp, 'missing.json') }))).toThrow(
      /GITHUB_EVENT_PATH/,
    );
    const env = readGitHubEnv('report', { GITHUB_TOKEN: 't0ken-value', GITHUB_REPOSITORY: 'a/b' });
    expect(env.apiUrl).toBe('https://api.github.com');
    expect(env.event).toBeUndefined();
  });
});
