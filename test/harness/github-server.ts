// An in-process stand-in for the GitHub REST endpoints backflow uses, answering like GitHub does
// (status codes, JSON error shape, Link pagination, validation limits). Octokit is pointed at it via baseUrl.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  /** Path without the API prefix, with the query string (`/repos/o/r/issues/1/comments?per_page=100`). */
  readonly url: string;
  readonly authorization: string | undefined;
  readonly userAgent: string | undefined;
  readonly body: unknown;
  readonly status: number;
}

export interface StoredComment {
  readonly id: number;
  readonly issue: number;
  body: string;
  readonly created_at: string;
  updated_at: string;
  readonly user: { readonly login: string };
}

export interface StoredStatus {
  readonly sha: string;
  readonly state: string;
  readonly context: string;
  readonly description: string | null;
  readonly target_url: string | null;
}

export interface StoredPull {
  readonly number: number;
  readonly state?: 'open' | 'closed';
  readonly merged_at?: string | null;
  readonly merge_commit_sha?: string | null;
  readonly head_sha?: string;
  readonly base_ref?: string;
}

/** A forced failure: the next `times` requests matching method and path answer `status` with `message`. */
export interface Failure {
  readonly status: number;
  readonly message: string;
  readonly method?: string;
  readonly path?: RegExp;
  times?: number;
  readonly errors?: readonly unknown[];
}

export interface GitHubServer {
  /** The API base URL (with the prefix, e.g. `http://127.0.0.1:PORT/api/v3`). */
  readonly url: string;
  readonly token: string;
  readonly requests: RecordedRequest[];
  comments(owner: string, repo: string, issue: number): StoredComment[];
  statuses(owner: string, repo: string, sha: string): StoredStatus[];
  /** Adds a comment as another user (`login`). */
  seedComment(owner: string, repo: string, issue: number, body: string, login?: string): StoredComment;
  /** What `GET /repos/{o}/{r}/commits/{sha}/pulls` answers. */
  setCommitPulls(owner: string, repo: string, sha: string, pulls: readonly StoredPull[]): void;
  fail(failure: Failure): void;
  reset(): void;
  close(): Promise<void>;
}

const DOCS = 'https://docs.github.com/rest';
const COMMENT_LIMIT = 65_536;

/** Starts the stand-in on 127.0.0.1. Repositories exist once used; `repos` (owner/repo) limits which exist. */
export async function startGitHubServer(
  opts: { token?: string; prefix?: string; repos?: readonly string[] } = {},
): Promise<GitHubServer> {
  const token = opts.token ?? 'ghs_testtoken0123456789';
  const prefix = (opts.prefix ?? '').replace(/\/+$/, '');
  const requests: RecordedRequest[] = [];
  let comments = new Map<string, StoredComment[]>(); // "o/r" → comments
  let statuses = new Map<string, StoredStatus[]>(); // "o/r@sha"
  let pulls = new Map<string, readonly StoredPull[]>(); // "o/r@sha"
  let failures: Failure[] = [];
  let nextId = 1_000;

  const repoComments = (o: string, r: string) => {
    const key = `${o}/${r}`;
    const list = comments.get(key) ?? [];
    comments.set(key, list);
    return list;
  };
  const addComment = (o: string, r: string, issue: number, body: string, login: string): StoredComment => {
    const now = new Date().toISOString();
    const c: StoredComment = { id: nextId++, issue, body, created_at: now, updated_at: now, user: { login } };
    repoComments(o, r).push(c);
    return c;
  };

  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => {
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = raw;
      }
      const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
        const path = (req.url ?? '').slice(prefix.length);
        requests.push({
          method: req.method ?? '',
          url: path,
          authorization: req.headers.authorization,
          userAgent: req.headers['user-agent'],
          body,
          status,
        });
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(data === undefined ? '' : JSON.stringify(data));
      };
      try {
        route(req, res, body, send);
      } catch (e) {
        send(500, { message: `stand-in error: ${String(e)}`, documentation_url: DOCS });
      }
    });
  });

  function route(
    req: IncomingMessage,
    _res: ServerResponse,
    body: unknown,
    send: (status: number, data: unknown, headers?: Record<string, string>) => void,
  ) {
    const method = req.method ?? 'GET';
    const full = new URL(req.url ?? '/', 'http://stand-in');
    if (!full.pathname.startsWith(`${prefix}/`))
      return send(404, { message: 'Not Found', documentation_url: DOCS });
    const path = full.pathname.slice(prefix.length);
    const origin = `http://${req.headers.host}${prefix}`;

    const auth = req.headers.authorization ?? '';
    const presented = /^(?:token|bearer)\s+(\S+)$/i.exec(auth)?.[1];
    if (presented !== token) {
      return send(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
    }
    const forced = failures.find(
      (f) => (f.times ?? 1) > 0 && (!f.method || f.method === method) && (!f.path || f.path.test(path)),
    );
    if (forced) {
      forced.times = (forced.times ?? 1) - 1;
      return send(forced.status, {
        message: forced.message,
        ...(forced.errors ? { errors: forced.errors } : {}),
        documentation_url: DOCS,
        status: String(forced.status),
      });
    }

    const m = /^\/repos\/([^/]+)\/([^/]+)\/(.*)$/.exec(path);
    if (!m) return send(404, { message: 'Not Found', documentation_url: DOCS });
    const [, owner, repo, rest] = m as unknown as [string, string, string, string];
    if (opts.repos && !opts.repos.includes(`${owner}/${repo}`)) {
      return send(404, { message: 'Not Found', documentation_url: DOCS });
    }
    const commentJson = (c: StoredComment) => ({
      id: c.id,
      node_id: `IC_${c.id}`,
      url: `${origin}/repos/${owner}/${repo}/issues/comments/${c.id}`,
      html_url: `https://github.test/${owner}/${repo}/pull/${c.issue}#issuecomment-${c.id}`,
      issue_url: `${origin}/repos/${owner}/${repo}/issues/${c.issue}`,
      body: c.body,
      user: { login: c.user.login, id: 1, type: 'Bot' },
      created_at: c.created_at,
      updated_at: c.updated_at,
      author_association: 'NONE',
    });
    const bodyText = (b: unknown) =>
      typeof b === 'object' && b !== null && typeof (b as { body?: unknown }).body === 'string'
        ? (b as { body: string }).body
        : undefined;
    const tooLong = () =>
      send(422, {
        message: 'Validation Failed',
        errors: [
          {
            resource: 'IssueComment',
            code: 'unprocessable',
            field: 'data',
            message: 'Body is too long (maximum is 65536 characters)',
          },
        ],
        documentation_url: `${DOCS}/issues/comments#create-an-issue-comment`,
        status: '422',
      });

    // GET|POST /repos/{o}/{r}/issues/{n}/comments
    const issueComments = /^issues\/(\d+)\/comments$/.exec(rest);
    if (issueComments) {
      const issue = Number(issueComments[1]);
      if (method === 'GET') {
        const perPage = Math.min(100, Math.max(1, Number(full.searchParams.get('per_page') ?? 30) || 30));
        const page = Math.max(1, Number(full.searchParams.get('page') ?? 1) || 1);
        const all = repoComments(owner, repo).filter((c) => c.issue === issue);
        const last = Math.max(1, Math.ceil(all.length / perPage));
        const slice = all.slice((page - 1) * perPage, page * perPage);
        const link = (p: number, rel: string) =>
          `<${origin}/repos/${owner}/${repo}/issues/${issue}/comments?per_page=${perPage}&page=${p}>; rel="${rel}"`;
        const links: string[] = [];
        if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
        if (page > 1) links.push(link(1, 'first'), link(page - 1, 'prev'));
        return send(200, slice.map(commentJson), links.length > 0 ? { link: links.join(', ') } : {});
      }
      if (method === 'POST') {
        const text = bodyText(body);
        if (text === undefined)
          return send(422, {
            message: 'Invalid request.\n\n"body" wasn\'t supplied.',
            documentation_url: DOCS,
            status: '422',
          });
        if (text.length > COMMENT_LIMIT) return tooLong();
        return send(201, commentJson(addComment(owner, repo, issue, text, 'github-actions[bot]')));
      }
    }

    // PATCH /repos/{o}/{r}/issues/comments/{id}
    const oneComment = /^issues\/comments\/(\d+)$/.exec(rest);
    if (oneComment && method === 'PATCH') {
      const c = repoComments(owner, repo).find((x) => x.id === Number(oneComment[1]));
      if (!c) return send(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
      const text = bodyText(body);
      if (text === undefined)
        return send(422, { message: 'Invalid request.', documentation_url: DOCS, status: '422' });
      if (text.length > COMMENT_LIMIT) return tooLong();
      c.body = text;
      c.updated_at = new Date().toISOString();
      return send(200, commentJson(c));
    }

    // POST /repos/{o}/{r}/statuses/{sha}
    const statusPath = /^statuses\/([0-9a-f]{7,40})$/i.exec(rest);
    if (statusPath && method === 'POST') {
      const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
      const state = b.state;
      if (typeof state !== 'string' || !['error', 'failure', 'pending', 'success'].includes(state)) {
        return send(422, {
          message: 'Validation Failed',
          errors: [
            {
              resource: 'Status',
              code: 'custom',
              field: 'state',
              message: 'state is not included in the list',
            },
          ],
          documentation_url: DOCS,
          status: '422',
        });
      }
      const description = typeof b.description === 'string' ? b.description : null;
      if (description !== null && description.length > 140) {
        return send(422, {
          message: 'Validation Failed',
          errors: [
            {
              resource: 'Status',
              code: 'custom',
              field: 'description',
              message: 'description is too long (maximum is 140 characters)',
            },
          ],
          documentation_url: DOCS,
          status: '422',
        });
      }
      const status: StoredStatus = {
        sha: statusPath[1]!,
        state,
        context: typeof b.context === 'string' ? b.context : 'default',
        description,
        target_url: typeof b.target_url === 'string' ? b.target_url : null,
      };
      const key = `${owner}/${repo}@${status.sha}`;
      statuses.set(key, [...(statuses.get(key) ?? []), status]);
      return send(201, {
        id: nextId++,
        url: `${origin}/repos/${owner}/${repo}/statuses/${status.sha}`,
        ...status,
        created_at: new Date().toISOString(),
      });
    }

    // GET /repos/{o}/{r}/commits/{sha}/pulls
    const commitPulls = /^commits\/([^/]+)\/pulls$/.exec(rest);
    if (commitPulls && method === 'GET') {
      const sha = commitPulls[1]!;
      const list = pulls.get(`${owner}/${repo}@${sha}`) ?? [];
      return send(
        200,
        list.map((p) => ({
          number: p.number,
          state: p.state ?? (p.merged_at ? 'closed' : 'open'),
          merged_at: p.merged_at ?? null,
          merge_commit_sha: p.merge_commit_sha ?? null,
          head: { sha: p.head_sha ?? sha, ref: `feature-${p.number}` },
          base: { ref: p.base_ref ?? 'main' },
          html_url: `https://github.test/${owner}/${repo}/pull/${p.number}`,
        })),
      );
    }
    return send(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
  }

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    token,
    requests,
    comments: (o, r, issue) => repoComments(o, r).filter((c) => c.issue === issue),
    statuses: (o, r, sha) => statuses.get(`${o}/${r}@${sha}`) ?? [],
    seedComment: (o, r, issue, body, login = 'someone') => addComment(o, r, issue, body, login),
    setCommitPulls: (o, r, sha, list) => {
      pulls.set(`${o}/${r}@${sha}`, list);
    },
    fail: (f) => {
      failures.push({ ...f });
    },
    reset: () => {
      requests.length = 0;
      comments = new Map();
      statuses = new Map();
      pulls = new Map();
      failures = [];
    },
    close: () =>
      new Promise<void>((ok, ko) => {
        server.closeAllConnections();
        server.close((e) => (e ? ko(e) : ok()));
      }),
  };
}
