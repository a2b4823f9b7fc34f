import type { Alert } from '../config/types.gen.js';
import { errorMessage } from '../errors.js';
import type { AlertMessage, AttemptResult } from './types.js';

const TIMEOUT_MS = 10_000;

/** Slack's mrkdwn needs only these three escaped. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A Block Kit block (the subset backflow sends). */
type Block = Readonly<Record<string, unknown>>;

/**
 * The message as an incoming-webhook payload: a header, the summary, the facts as fields, the
 * top errors with their recommended actions, and how to see more. Within Slack's limits (header
 * 150 characters, at most 10 fields of 2,000, section text 3,000); `text` is the notification
 * fallback.
 */
export function slackPayload(m: AlertMessage, channel?: string): Record<string, unknown> {
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(m.title, 150), emoji: false } },
    { type: 'section', text: { type: 'mrkdwn', text: cut(esc(m.summary), 3000) } },
    {
      type: 'section',
      fields: m.facts
        .slice(0, 10)
        .map((f) => ({ type: 'mrkdwn', text: cut(`*${esc(f.label)}*\n${esc(f.value)}`, 2000) })),
    },
  ];
  if (m.errors.length) {
    const heading = m.kind === 'recovered' ? '*Errors of this run*' : '*Top errors*';
    const items = m.errors.map(
      (e) =>
        `• \`${esc(e.code)}\`${e.records ? ` (${e.records} record${e.records === 1 ? '' : 's'})` : ''}: ${esc(e.message)}\n   _Recommended action:_ ${esc(e.recommended_action)}`,
    );
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: cut([heading, ...items].join('\n'), 3000) },
    });
  }
  blocks.push({
    type: 'context',
    elements: [
      { type: 'mrkdwn', text: cut(`More: \`${esc(m.next_step)}\` · backflow alert *${esc(m.alert)}*`, 3000) },
    ],
  });
  return { ...(channel ? { channel } : {}), text: cut(`${m.title}: ${m.summary}`, 3000), blocks };
}

export interface SendSlackRequest {
  /** The alert's `slack` block with `${env:NAME}` already resolved. */
  readonly slack: NonNullable<Alert['slack']>;
  readonly message: AlertMessage;
}

/**
 * Posts the message to the incoming webhook. 2xx: delivered; 408, 429 (honouring Retry-After),
 * 5xx and network errors: retried later; other 4xx (`invalid_payload`, `no_service`,
 * `channel_not_found`): permanent. The URL is a secret and never appears in an error.
 */
export async function sendSlack(req: SendSlackRequest): Promise<AttemptResult> {
  const url = req.slack.webhook_url;
  if (!/^https?:\/\//i.test(url))
    return { ok: false, retryable: false, error: 'slack.webhook_url must be an http(s) URL' };
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(slackPayload(req.message, req.slack.channel)),
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    return { ok: false, retryable: true, error: `slack: ${errorMessage(cause ?? e)}` };
  }
  const body = cut((await res.text().catch(() => '')).trim(), 200);
  if (res.status >= 200 && res.status < 300) return { ok: true };
  const error = `slack: HTTP ${res.status}${body ? ` ${body}` : ''}`;
  if (res.status === 408 || res.status === 429 || res.status >= 500) {
    const retryAfter = Number(res.headers.get('retry-after'));
    return {
      ok: false,
      retryable: true,
      error,
      ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
    };
  }
  return { ok: false, retryable: false, error };
}
