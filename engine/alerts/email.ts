import nodemailer from 'nodemailer';
import type { Alert } from '../config/types.gen.js';
import { errorMessage } from '../errors.js';
import { renderText } from './message.js';
import type { AlertMessage, AttemptResult } from './types.js';

/** The sender when `email.from` is not set. */
export const DEFAULT_FROM = 'backflow@localhost';

/** Connection limits: an unreachable server must not hold a sync for long (the URL's query may override them). */
const TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 };

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A small, client-safe HTML version of the message (inline styles only). */
export function renderHtml(m: AlertMessage): string {
  const color = m.kind === 'recovered' ? '#1a7f37' : m.status === 'partial_success' ? '#9a6700' : '#cf222e';
  const rows = m.facts
    .map(
      (f) =>
        `<tr><th align="left" style="padding:2px 12px 2px 0;color:#57606a">${escapeHtml(f.label)}</th><td>${escapeHtml(f.value)}</td></tr>`,
    )
    .join('');
  const errors = m.errors.length
    ? `<h3 style="margin:16px 0 4px">${m.kind === 'recovered' ? 'Errors of this run' : 'Top errors'}</h3><ul>${m.errors
        .map(
          (e) =>
            `<li><code>${escapeHtml(e.code)}</code>${e.records ? ` (${e.records} record${e.records === 1 ? '' : 's'})` : ''}: ${escapeHtml(e.message)}<br><em>Recommended action:</em> ${escapeHtml(e.recommended_action)}</li>`,
        )
        .join('')}</ul>`
    : '';
  return [
    '<!doctype html><html><body style="font-family:sans-serif;font-size:14px">',
    `<h2 style="color:${color};margin:0 0 8px">${escapeHtml(m.title)}</h2>`,
    `<p>${escapeHtml(m.summary)}</p>`,
    `<table style="border-collapse:collapse">${rows}</table>`,
    errors,
    `<p>More: <code>${escapeHtml(m.next_step)}</code></p>`,
    `<p style="color:#57606a;font-size:12px">backflow alert &quot;${escapeHtml(m.alert)}&quot;</p>`,
    '</body></html>',
  ].join('\n');
}

export interface SendEmailRequest {
  /** The alert's `email` block with `${env:NAME}` already resolved. */
  readonly email: NonNullable<Alert['email']>;
  readonly message: AlertMessage;
}

/** Sends one email to every `to` address through the SMTP server of `smtp.url`. */
export async function sendEmail(req: SendEmailRequest): Promise<AttemptResult> {
  const url = req.email.smtp.url;
  if (!/^smtps?:\/\//i.test(url))
    return { ok: false, retryable: false, error: 'email.smtp.url must start with smtp:// or smtps://' };
  const transport = nodemailer.createTransport({ ...TIMEOUTS, url });
  try {
    const m = req.message;
    const info = await transport.sendMail({
      from: req.email.from ?? DEFAULT_FROM,
      to: [...req.email.to],
      subject: m.title,
      text: renderText(m),
      html: renderHtml(m),
      headers: {
        'X-Backflow-Alert': m.alert,
        'X-Backflow-Topic': m.topic,
        ...(m.run_id ? { 'X-Backflow-Run': m.run_id } : {}),
      },
    });
    const rejected = (info.rejected ?? []).map(String);
    return rejected.length
      ? { ok: true, note: `rejected by the server: ${rejected.join(', ')}` }
      : { ok: true };
  } catch (e) {
    return classify(e);
  } finally {
    transport.close();
  }
}

/** SMTP 5xx answers are permanent; network trouble, timeouts and 4xx answers are retried. */
function classify(e: unknown): AttemptResult {
  const code = (e as { responseCode?: number }).responseCode;
  const error = `smtp: ${errorMessage(e)}`;
  return { ok: false, retryable: !(typeof code === 'number' && code >= 500 && code < 600), error };
}
