import { countUnread, listNotifications, markNotificationsRead } from '../../engine/alerts/in-app.js';
import { UserError } from '../../engine/errors.js';
import { type IO, print, printJson } from '../io.js';
import { renderNotifications } from '../render/alerts-text.js';
import { openReadOnly } from './alerts.js';

/** `backflow notifications [--unread] [--json]`: in-app notifications, newest first. */
export async function notificationsCommand(
  io: IO,
  opts: { dir: string; unread?: boolean; limit?: string; json?: boolean },
): Promise<number> {
  const limit = Number(opts.limit ?? 100);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UserError(`--limit ${opts.limit} is not a positive number`, { hint: 'e.g. --limit 20' });
  return openReadOnly(io, opts.dir, async ({ store }) => {
    const rows = store ? await listNotifications({ store, unread: opts.unread === true, limit }) : [];
    if (opts.json) printJson(io, rows);
    else print(io, renderNotifications(rows, store ? await countUnread(store) : 0, io.style));
    return 0;
  });
}

/** `backflow notifications read ID|--all`: marks notifications read. */
export async function notificationsReadCommand(
  io: IO,
  opts: { dir: string; id?: string; all?: boolean },
): Promise<number> {
  if (!!opts.all === (opts.id !== undefined))
    throw new UserError(
      opts.all ? 'give either a notification ID or --all, not both' : 'which notification?',
      {
        hint: 'backflow notifications read ID, or backflow notifications read --all',
      },
    );
  const id = opts.id === undefined ? undefined : Number(opts.id.replace(/^#/, ''));
  if (id !== undefined && !Number.isInteger(id))
    throw new UserError(`${opts.id} is not a notification ID`, {
      hint: 'IDs are the numbers `backflow notifications` shows',
    });
  return openReadOnly(io, opts.dir, async ({ store }) => {
    const marked = store
      ? await markNotificationsRead({ store, ...(id !== undefined ? { ids: [id] } : {}) })
      : [];
    if (id !== undefined && marked.length === 0)
      throw new UserError(`no notification #${id}`, { hint: 'list them with `backflow notifications`' });
    print(
      io,
      id !== undefined ? `Notification #${id} marked read.` : `${marked.length} notification(s) marked read.`,
    );
    return 0;
  });
}
