import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backflow } from './cli.js';

let dir: string;

beforeAll(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'backflow-e2e-')), 'demo');
  const init = await backflow(['init', dir]);
  expect(init.code, init.stderr).toBe(0);
});

describe('quickstart through the built CLI', () => {
  it('validates, plans, applies and syncs on SQLite files', async () => {
    const validate = await backflow(['--dir', dir, 'validate']);
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.stdout).toContain('The configuration is valid');

    const plan = await backflow(['--dir', dir, 'plan', '--detailed-exitcode']);
    expect(plan.code, plan.stderr + plan.stdout).toBe(2);
    expect(plan.stdout).toContain('+ mapping "users_to_crm" {');
    expect(plan.stdout).toContain('Plan: 6 to create, 0 to update, 0 to delete.');

    const refused = await backflow(['--dir', dir, 'apply']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--auto-approve');

    const apply = await backflow(['--dir', dir, 'apply', '--auto-approve']);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toContain('Apply complete! Resources: 6 added, 0 changed, 0 destroyed.');

    const again = await backflow(['--dir', dir, 'plan', '--detailed-exitcode']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('No changes.');

    const sync = await backflow(['--dir', dir, 'sync', 'users_to_crm', '--json']);
    expect(sync.code, sync.stderr).toBe(0);
    const run = JSON.parse(sync.stdout);
    expect(run).toMatchObject({
      mapping: 'users_to_crm',
      status: 'success',
      extract: { total: 4, added: 4, updated: 0, deleted: 0 },
    });
    expect(run.load).toMatchObject({ attempted: 4, succeeded: 4, failed: 0 });

    const db = new Database(join(dir, 'crm.db'), { readonly: true });
    const rows = db.prepare('select * from contacts order by user_id').all() as Record<string, string>[];
    db.close();
    expect(rows.map((r) => r.email)).toEqual([
      'ada@example.com',
      'grace@example.com',
      'alan@example.com',
      'edsger@example.com',
    ]);
    expect(rows[0]).toMatchObject({ user_id: '1', full_name: 'Ada Lovelace', color: 'green' });
    expect(JSON.parse(rows[0]!.profile!)).toEqual({ plan: 'pro', company: 'Analytical Engines' });
    expect(JSON.parse(rows[0]!.purchases!)).toEqual([
      { product: 'jacket', price: 40 },
      { product: 'socks', price: 5 },
    ]);

    const file = await backflow(['--dir', dir, 'sync', 'users_to_audit_log']);
    expect(file.code, file.stderr).toBe(0);
    const lines = (await readFile(join(dir, 'out', 'active_users.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({
      change: 'added',
      key: '1',
      fields: { email: 'ada@example.com', source: 'quickstart', traits: { color: 'green' } },
    });
  });

  it('sends only changes, deletes what left the model, and lists runs', async () => {
    const w = new Database(join(dir, 'warehouse.db'));
    w.prepare("update users set plan = 'enterprise' where id = 2").run();
    w.prepare('update users set active = 0 where id = 3').run();
    w.close();
    const sync = await backflow(['--dir', dir, 'sync', 'users_to_crm', '--json']);
    const run = JSON.parse(sync.stdout);
    expect(run.extract).toEqual({ total: 4, added: 0, updated: 1, deleted: 1 });
    expect(run.load).toMatchObject({
      attempted: 2,
      succeeded: 2,
      updated: { succeeded: 1, failed: 0 },
      deleted: { succeeded: 1, failed: 0 },
    });
    const db = new Database(join(dir, 'crm.db'), { readonly: true });
    expect(
      (db.prepare('select user_id, plan from contacts order by user_id').all() as { user_id: string }[]).map(
        (r) => r.user_id,
      ),
    ).toEqual(['1', '2', '4']);
    db.close();

    const syncs = await backflow(['--dir', dir, 'syncs', '--json']);
    const overview = JSON.parse(syncs.stdout);
    expect(overview.map((r: { mapping: string }) => r.mapping).sort()).toEqual([
      'users_to_audit_log',
      'users_to_crm',
    ]);
    expect(overview.find((r: { mapping: string }) => r.mapping === 'users_to_crm')).toMatchObject({
      mapping_status: 'enabled',
      id: run.id,
    });
    const table = await backflow(['--dir', dir, 'syncs', '--status', 'success']);
    expect(table.stdout).toContain('LATEST SYNC');
    const show = await backflow(['--dir', dir, 'syncs', 'show', run.id]);
    expect(show.stdout).toContain(`Sync ${run.id} of mapping users_to_crm: success`);
  });

  it('plans a full resync when fields change and reports a stale saved plan', async () => {
    const cfg = join(dir, 'backflow.yaml');
    const text = await readFile(cfg, 'utf8');
    await writeFile(
      cfg,
      text.replace('      plan: plan\n      color', '      plan: plan\n      name: name\n      color'),
    );
    const planned = await backflow(['--dir', dir, 'plan', '--out', join(dir, 'p.json')]);
    expect(planned.stdout).toContain('full resync');
    expect(planned.stderr).toBe('');
    // the destination has no column `name`: plan refresh says so before apply
    expect(planned.code).toBe(1);
    expect(planned.stdout).toMatch(/name/);
    await writeFile(cfg, text);
    expect(existsSync(join(dir, 'p.json'))).toBe(true);
  });
});
