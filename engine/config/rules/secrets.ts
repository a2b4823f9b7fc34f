import type { Diagnostic } from '../../diagnostics.js';
import { badInterpolations, hasInlinePassword, redact } from '../env.js';
import type { Rule } from './context.js';

/** `${...}` must be `${env:NAME}`; literal secrets in URLs and secret fields are flagged. */
export const secretsByReference: Rule = ({ doc, map }) => {
  const out: Diagnostic[] = [];
  const walk = (value: unknown, path: (string | number)[]) => {
    if (typeof value === 'string') {
      for (const bad of badInterpolations(value))
        out.push({
          severity: 'error',
          code: 'invalid_env_reference',
          summary: `\`${bad}\` is not a valid reference in \`${path.join('.')}\``,
          detail: 'write `${env:NAME}` (YAML) or env("NAME") (HCL)',
          ...(map.value(path) ?? {}),
        });
      if (hasInlinePassword(value))
        out.push({
          severity: 'warning',
          code: 'inline_secret',
          summary: `\`${path.join('.')}\` holds an inline password (${redact(value)})`,
          detail:
            'backflow redacts it in plans, state and logs, but it still sits in your config files: use ${env:NAME} for the password',
          ...(map.value(path) ?? {}),
        });
      const last = path[path.length - 1];
      if (
        (last === 'signing_secret' || last === 'webhook_url') &&
        value.length > 0 &&
        !value.includes('${env:')
      )
        out.push({
          severity: 'warning',
          code: 'inline_secret',
          summary: `\`${path.join('.')}\` is a secret written inline`,
          detail: 'use ${env:NAME} so it stays out of your repository',
          ...(map.value(path) ?? {}),
        });
      return;
    }
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) walk(v, [...path, i]);
    } else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(doc, []);
  return out;
};

/** The postgres state backend needs a URL; the local one takes a path. */
export const stateSettings: Rule = ({ doc, map }) => {
  const state = doc.settings?.state;
  if (state && state.backend === 'postgres' && typeof state.url !== 'string')
    return [
      {
        severity: 'error',
        code: 'missing_field',
        summary: 'settings.state: the postgres backend needs `url`',
        detail: 'url: ${env:BACKFLOW_STATE_URL}',
        ...(map.key(['settings', 'state']) ?? {}),
      },
    ];
  return [];
};
