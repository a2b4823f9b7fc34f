import { Cron } from 'croner';
import { manifests } from '../../../providers/manifests.js';
import type { ActionName, ProviderType } from '../../../providers/sdk.js';
import type { Diagnostic } from '../../diagnostics.js';
import { parseDuration } from '../durations.js';
import type { FieldValue } from '../types.gen.js';
import { at, entries, type Rule } from './context.js';

/** A mapping's action exists for its destination's type, with the options it needs and changes it can carry. */
export const actionFitsDestination: Rule = ({ doc, map }) => {
  const out: Diagnostic[] = [];
  for (const [name, m] of entries(doc.mappings)) {
    const dest = doc.destinations?.[m.destination];
    if (!dest || typeof dest !== 'object' || !(dest.type in manifests)) continue;
    const manifest = manifests[dest.type as ProviderType];
    const spec = manifest.actions[m.action as ActionName];
    const address = `mapping.${name}`;
    const everyAction = ['upsert', 'insert', 'update', 'delete', 'mirror', 'post', 'append'];
    if (!spec && !everyAction.includes(m.action)) continue; // the schema reports an unknown action name
    if (!spec) {
      const allowed = Object.keys(manifest.actions);
      out.push({
        severity: 'error',
        code: 'unsupported_action',
        summary: `${address}: action \`${m.action}\` does not exist for ${dest.type} destination \`${m.destination}\``,
        detail: `${dest.type} destinations support: ${allowed.join(', ')}`,
        address,
        ...at(map, ['mappings', name, 'action']),
      });
      continue;
    }
    for (const option of spec.requires) {
      if (typeof m[option] !== 'string')
        out.push({
          severity: 'error',
          code: 'missing_option',
          summary: `${address}: action \`${m.action}\` needs \`${option}\``,
          detail:
            option === 'key'
              ? 'set `key` to the destination column that holds the model primary key'
              : 'set `table` to the destination table (schema.table allowed)',
          address,
          ...at(map, ['mappings', name], 'key'),
        });
    }
    if (Array.isArray(m.sync_on)) {
      m.sync_on.forEach((change, i) => {
        if (!spec.changes.includes(change))
          out.push({
            severity: 'error',
            code: 'unsupported_change',
            summary: `${address}: action \`${m.action}\` cannot send \`${change}\` records`,
            detail: `\`${m.action}\` sends: ${spec.changes.join(', ')}${change === 'deleted' && m.action === 'upsert' ? ' (use `mirror` to also delete)' : ''}`,
            address,
            ...at(map, ['mappings', name, 'sync_on', i]),
          });
      });
    }
    if (manifest.type !== 'webhook' && manifest.type !== 'file' && m.fields && typeof m.fields === 'object') {
      for (const field of Object.keys(m.fields)) {
        if (field.includes('.'))
          out.push({
            severity: 'error',
            code: 'invalid_field_name',
            summary: `${address}: destination column \`${field}\` contains a dot`,
            detail: 'database destinations take column names; build nested values with {object: …}',
            address,
            ...at(map, ['mappings', name, 'fields', field], 'key'),
          });
      }
    }
  }
  return out;
};

/** Field mappings are well formed: column paths have no empty parts, customize forms are not empty. */
export const fieldsWellFormed: Rule = ({ doc, map }) => {
  const out: Diagnostic[] = [];
  for (const [name, m] of entries(doc.mappings)) {
    if (!m.fields || typeof m.fields !== 'object') continue;
    if (Object.keys(m.fields).length === 0)
      out.push({
        severity: 'error',
        code: 'no_fields',
        summary: `mapping.${name} maps no fields`,
        detail: 'add at least one destination field, e.g. `email: email`',
        address: `mapping.${name}`,
        ...at(map, ['mappings', name, 'fields']),
      });
    const visit = (value: FieldValue | undefined, path: (string | number)[]) => {
      const problem = (summary: string, detail: string) =>
        out.push({
          severity: 'error',
          code: 'invalid_field_mapping',
          summary: `mapping.${name}: field \`${path.slice(3).join('.')}\`: ${summary}`,
          detail,
          address: `mapping.${name}`,
          ...at(map, path),
        });
      const column = (c: unknown, p: (string | number)[]) => {
        if (typeof c === 'string' && c.split('.').some((part) => part.length === 0))
          problem(`\`${c}\` is not a valid column path`, 'write `column` or `column.property.subproperty`');
        void p;
      };
      if (typeof value === 'string') column(value, path);
      else if (value && typeof value === 'object') {
        if ('column' in value) column(value.column, [...path, 'column']);
        if ('object' in value && value.object && typeof value.object === 'object') {
          if (Object.keys(value.object).length === 0)
            problem(
              '`object` has no properties',
              'list the properties to build, e.g. `object: {plan: plan}`',
            );
          for (const [k, v] of Object.entries(value.object)) visit(v as FieldValue, [...path, 'object', k]);
        }
        if ('array' in value && value.array && typeof value.array === 'object') {
          column(value.array.column, [...path, 'array', 'column']);
          if (value.array.items && Object.keys(value.array.items).length === 0)
            problem(
              '`array.items` keeps no properties',
              'list output → input properties, e.g. `items: {name: productName}`',
            );
        }
      }
    };
    for (const [field, value] of Object.entries(m.fields))
      visit(value as FieldValue, ['mappings', name, 'fields', field]);
  }
  return out;
};

/** Schedules are a positive interval or a valid cron expression. */
export const schedulesValid: Rule = ({ doc, map }) => {
  const out: Diagnostic[] = [];
  for (const [name, m] of entries(doc.mappings)) {
    const s = m.schedule;
    if (!s || typeof s !== 'object') continue;
    if ('every' in s && typeof s.every === 'string') {
      const ms = parseDuration(s.every);
      if (ms !== undefined && ms < 1000)
        out.push({
          severity: 'error',
          code: 'invalid_schedule',
          summary: `mapping.${name}: schedule \`every: ${s.every}\` is shorter than one second`,
          detail: 'use an interval of at least 1s, e.g. `every: 15m`',
          address: `mapping.${name}`,
          ...at(map, ['mappings', name, 'schedule', 'every']),
        });
    }
    if ('cron' in s && typeof s.cron === 'string') {
      try {
        new Cron(s.cron, { paused: true, ...(s.timezone ? { timezone: s.timezone } : {}) }).stop();
      } catch (e) {
        out.push({
          severity: 'error',
          code: 'invalid_schedule',
          summary: `mapping.${name}: \`${s.cron}\` is not a valid cron expression: ${(e as Error).message}`,
          detail: 'five fields: minute hour day-of-month month day-of-week, e.g. "*/15 * * * *"',
          address: `mapping.${name}`,
          ...at(map, ['mappings', name, 'schedule', 'cron']),
        });
      }
    }
  }
  return out;
};
