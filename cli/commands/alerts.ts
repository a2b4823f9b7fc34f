import { listDeliveries } from '../../engine/alerts/deliveries.js';
import { describeAlerts } from '../../engine/alerts/list.js';
import type { Delivery } from '../../engine/alerts/types.js';
import { UserError } from '../../engine/errors.js';
import type { StateDocument } from '../../engine/state/types.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { type IO, print, printJson } from '../io.js';
import { renderAlerts, renderDeliveries } from '../render/alerts-text.js';
import { readSettings } from '../settings.js';
import { runtimeStore, stateBackend } from '../workspace.js';

/** The applied state and the runtime store if it exists (listing creates no store). */
async function openReadOnly<T>(
  io: IO,
  dir: string,
  fn: (ctx: { state: StateDocument | null; store: RuntimeStore | undefined }) => Promise<T>,
): Promise<T> {
  const config = await readSettings(io, dir);
  const backend = await stateBackend(config);
  let state: StateDocument | null;
  try {
    state = await backend.read();
  } finally {
    await backend.close();
  }
  const store = await runtimeStore(config, { ifExists: true });
  try {
    return await fn({ state, store });
  } finally {
    await store?.close();
  }
}

/** `backflow alerts list [--json]`: each applied alert with its triggers, scope and active recipients. */
export async function alertsListCommand(io: IO, opts: { dir: string; json?: boolean }): Promise<number> {
  return openReadOnly(io, opts.dir, async ({ state, store }) => {
    const alerts = await describeAlerts({ state, store });
    if (opts.json) printJson(io, alerts);
    else print(io, renderAlerts(alerts, io.style));
    return 0;
  });
}

const STATUSES: readonly Delivery['status'][] = ['pending', 'sent', 'failed'];

/** `backflow alerts deliveries [--status S] [--alert A] [--json]`: what was sent, what waits for a retry, what failed. */
export async function alertsDeliveriesCommand(
  io: IO,
  opts: { dir: string; status?: string; alert?: string; limit?: string; json?: boolean },
): Promise<number> {
  const status = opts.status as Delivery['status'] | undefined;
  if (status !== undefined && !STATUSES.includes(status))
    throw new UserError(`unknown delivery status ${status}`, { hint: `use one of: ${STATUSES.join(', ')}` });
  const limit = Number(opts.limit ?? 100);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UserError(`--limit ${opts.limit} is not a positive number`, { hint: 'e.g. --limit 50' });
  return openReadOnly(io, opts.dir, async ({ store }) => {
    const rows = store
      ? await listDeliveries({
          store,
          limit,
          ...(status ? { status } : {}),
          ...(opts.alert ? { alert: opts.alert } : {}),
        })
      : [];
    if (opts.json) printJson(io, rows);
    else print(io, renderDeliveries(rows, io.style));
    return 0;
  });
}

export { openReadOnly };
