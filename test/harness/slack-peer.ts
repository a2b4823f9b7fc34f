// A local stand-in for Slack's incoming-webhook endpoint, answering as Slack does: `200 ok`
// (text/plain) for a valid payload, `400 invalid_payload` for one without text or blocks,
// `404 no_service` for an unknown hook path, and whatever a test queues (429 with Retry-After, 500).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackPost {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: Record<string, unknown>;
}

export interface SlackPeer {
  /** The webhook URL (its path plays the secret part). */
  readonly url: string;
  readonly posts: SlackPost[];
  /** Answers for the next requests, consumed in order before normal behaviour resumes. */
  readonly queue: { status: number; body: string; headers?: Record<string, string> }[];
  stop(): Promise<void>;
}

export async function startSlackPeer(opts: { port?: number } = {}): Promise<SlackPeer> {
  const hookPath = '/services/T000/B000/XXXXXXXXXXXXXXXX';
  const posts: SlackPost[] = [];
  const queue: SlackPeer['queue'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'text/plain', ...headers });
        res.end(body);
      };
      const forced = queue.shift();
      if (forced) return answer(forced.status, forced.body, forced.headers);
      if (req.method !== 'POST' || req.url !== hookPath) return answer(404, 'no_service');
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return answer(400, 'invalid_payload');
      }
      if (typeof body.text !== 'string' && !Array.isArray(body.blocks)) return answer(400, 'no_text');
      posts.push({ path: req.url, contentType: req.headers['content-type'], body });
      answer(200, 'ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${hookPath}`,
    posts,
    queue,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
