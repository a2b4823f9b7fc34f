import type { Command } from 'commander';
import type { CommandKit } from '../runtime-commands.js';
import { alertsDeliveriesCommand, alertsListCommand } from './alerts.js';
import { notificationsCommand, notificationsReadCommand } from './notifications.js';

/** `backflow alerts list|deliveries` and `backflow notifications [read]`. */
export function registerAlertCommands(program: Command, { dir, run, io }: CommandKit): void {
  const alerts = program.command('alerts').description('the applied alerts and what they delivered');
  alerts
    .command('list')
    .description('each alert with its triggers, scope, active recipients and open incidents')
    .option('--json', 'print JSON')
    .action(run(async (o: { json?: boolean }) => alertsListCommand(io(), { dir: dir(), ...o })));
  alerts
    .command('deliveries')
    .description('recorded email, Slack and in-app deliveries, newest first (pending ones are retried)')
    .option('--status <status>', 'pending, sent or failed')
    .option('--alert <alert>', 'only this alert')
    .option('--limit <n>', 'at most this many rows', '100')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { status?: string; alert?: string; limit?: string; json?: boolean }) =>
        alertsDeliveriesCommand(io(), { dir: dir(), ...o }),
      ),
    );

  const notifications = program
    .command('notifications')
    .description('in-app notifications of alerts, newest first')
    .option('--unread', 'only unread ones')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { unread?: boolean; limit?: string; json?: boolean }) =>
        notificationsCommand(io(), { dir: dir(), ...o }),
      ),
    );
  notifications
    .command('read [id]')
    .description('mark a notification read (or every one with --all)')
    .option('--all', 'every unread notification')
    .action(
      run(async (id: string | undefined, o: { all?: boolean }) =>
        notificationsReadCommand(io(), { dir: dir(), ...(id !== undefined ? { id } : {}), ...o }),
      ),
    );
}
