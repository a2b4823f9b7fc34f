// `backflow status`, plan health from the status document, `history export` and the output schemas,
// through the built CLI (`npm run build` first) on the quickstart's SQLite files.
import { mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { schemaErrors } from '../fixtures/output-schemas.js';
import { backflow } from './cli.js';

const AWKWARD = 'rejected, "vip" plan\nask the \'owner\'';
let dir: string;
let firstPlan: { code: number; stdout: string; stderr: string };
const cli = (...args: string[]) => backflow(['--dir', dir, ...args]);
const warehouse = (sql: string) => {
  const db = new Database(join(dir, 'warehouse.db'));
  db.exec(sql);
  db.close();
};

/** RFC 4180, written here independently of the exporter. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length) rows.push([...row, field]);
  return rows;
}

beforeAll(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'backflow-e2e-status-')), 'demo');
  expect((await backflow(['init', dir])).code).toBe(0);
  firstPlan = await cli('plan', '--json');
  const apply = await cli('apply', '--auto-approve');
  expect(apply.code, apply.stderr).toBe(0);
});

describe('status, health and history through the built CLI', () => {
  it('validate --json matches validate.schema.json, valid or not', async () => {
    const ok = await cli('validate', '--json');
    expect(ok.code).toBe(0);
    expect(schemaErrors('validate', JSON.parse(ok.stdout))).toEqual([]);
    const broken = await mkdtemp(join(tmpdir(), 'backflow-e2e-invalid-'));
    await writeFile(
      join(broken, 'main.yaml'),
      'models:\n  m: { source: nowhere, primary_key: id, sqll: x }\n',
    );
    const bad = await backflow(['--dir', broken, 'validate', '--json']);
    expect(bad.code).toBe(1);
    const out = JSON.parse(bad.stdout);
    expect(out.valid).toBe(false);
    expect(out.diagnostics.length).toBeGreaterThan(0);
    expect(schemaErrors('validate', out)).toEqual([]);
  });

  it('plan --json matches plan.schema.json: creates with their effects', () => {
    expect(firstPlan.code, firstPlan.stderr).toBe(0);
    const plan = JSON.parse(firstPlan.stdout);
    expect(schemaErrors('plan', plan)).toEqual([]);
    expect(plan.summary).toEqual({ create: 6, update: 0, delete: 0 });
    expect(
      plan.changes.flatMap((c: { effects: { kind: string }[] }) => c.effects.map((e) => e.kind)),
    ).toContain('full_resync');
  });

  it('a successful sync: its JSON matches run.schema.json and status passes --fail-on', async () => {
    const sync = await cli('sync', 'users_to_crm', '--json');
    expect(sync.code, sync.stderr).toBe(0);
    const run = JSON.parse(sync.stdout);
    expect(schemaErrors('run', run)).toEqual([]);

    const status = await cli('status', '--json', '--fail-on', 'users_to_crm', '--fail-on', 'all');
    expect(status.code, status.stderr).toBe(0);
    const doc = JSON.parse(status.stdout);
    expect(schemaErrors('status', doc)).toEqual([]);
    expect(doc).toEqual(JSON.parse(await readFile(join(dir, '.backflow', 'status.json'), 'utf8')));
    expect(doc.mappings.users_to_crm).toMatchObject({
      health: 'healthy',
      consecutive_failures: 0,
      last_run: { id: run.id, status: 'success', load: { attempted: 4, succeeded: 4 } },
    });
  });

  it('a partial success is reported but does not fail the check', async () => {
    const crm = new Database(join(dir, 'crm.db'));
    crm.exec(`create trigger no_vip before update on contacts when new.plan = 'vip'
      begin select raise(abort, '${AWKWARD.replaceAll("'", "''")}'); end;`);
    crm.close();
    warehouse(
      "update users set plan = 'vip' where id in (1, 2); update users set plan = 'team' where id = 3",
    );
    const sync = await cli('sync', 'users_to_crm', '--json');
    const run = JSON.parse(sync.stdout);
    expect(run.status).toBe('partial_success');
    expect(schemaErrors('run', run)).toEqual([]);
    const status = await cli('status', '--fail-on', 'users_to_crm');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('partial_success');
    expect(status.stdout).toContain(run.errors[0].recommended_action);
  });

  it('a failed sync fails --fail-on for that mapping and for all, not for the others', async () => {
    warehouse('alter table users rename to users_moved');
    const sync = await cli('sync', 'users_to_crm', '--json');
    expect(sync.code).toBe(1);
    const run = JSON.parse(sync.stdout);
    expect(run.status).toBe('failed');
    expect(schemaErrors('run', run)).toEqual([]);

    const named = await cli('status', '--fail-on', 'users_to_crm');
    expect(named.code).toBe(1);
    expect(named.stderr).toContain(`mapping users_to_crm: last run ${run.id} failed`);
    expect(named.stdout).toContain(run.errors[0].recommended_action);
    expect((await cli('status', '--fail-on', 'all')).code).toBe(1);
    expect((await cli('status', '--fail-on', 'users_to_audit_log')).code).toBe(0);
    expect((await cli('status')).code).toBe(0);
    const typo = await cli('status', '--fail-on', 'users_to_crn');
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('no mapping users_to_crn');

    const doc = JSON.parse((await cli('status', '--json')).stdout);
    expect(doc.mappings.users_to_crm).toMatchObject({
      health: 'failing',
      consecutive_failures: 1,
      last_run: { id: run.id, top_error: { code: run.errors[0].code } },
    });
    warehouse('alter table users_moved rename to users');
  });

  it('plan shows the health of a touched mapping from the status document when there is no store', async () => {
    const failed = JSON.parse((await cli('status', '--json')).stdout).mappings.users_to_crm.last_run;
    const cfg = join(dir, 'backflow.yaml');
    const text = await readFile(cfg, 'utf8');
    await writeFile(
      cfg,
      text.replace('    schedule: { every: 15m }\n', '    schedule: { every: 15m }\n    batch_size: 50\n'),
    );
    await rename(join(dir, '.backflow', 'store.db'), join(dir, 'store.db.away'));
    try {
      const json = await cli('plan', '--json');
      expect(json.code, json.stderr).toBe(0);
      const plan = JSON.parse(json.stdout);
      expect(schemaErrors('plan', plan)).toEqual([]);
      expect(plan.changes.map((c: { address: string }) => c.address)).toEqual(['mapping.users_to_crm']);
      expect(plan.health).toEqual([
        { mapping: 'users_to_crm', status: 'failed', started_at: failed.started_at, run_id: failed.id },
      ]);
      const human = await cli('plan');
      expect(human.stdout).toContain(
        `mapping.users_to_crm: last run failed at ${failed.started_at} (${failed.id})`,
      );
    } finally {
      await rename(join(dir, 'store.db.away'), join(dir, '.backflow', 'store.db'));
      await writeFile(cfg, text);
    }
  });

  it('history export: every run of the window as JSON lines and as CSV that parses back', async () => {
    expect((await cli('sync', 'users_to_audit_log')).code).toBe(0);
    const all = JSON.parse((await cli('syncs', '--all', '--json')).stdout) as { id: string }[];
    expect(all.length).toBe(4);

    const jsonl = await cli(
      'history',
      'export',
      '--since',
      '7d',
      '--format',
      'jsonl',
      '--out',
      join(dir, 'h.jsonl'),
    );
    expect(jsonl.code, jsonl.stderr).toBe(0);
    expect(jsonl.stderr).toContain('Exported 4 runs');
    const lines = (await readFile(join(dir, 'h.jsonl'), 'utf8')).trimEnd().split('\n');
    const runs = lines.map((l) => JSON.parse(l));
    expect(runs.map((r) => r.id)).toEqual(all.map((r) => r.id));
    for (const r of runs) expect(schemaErrors('run', r)).toEqual([]);
    const partial = runs.find((r) => r.status === 'partial_success');
    expect(partial.errors[0].message).toContain(AWKWARD);

    const csv = await cli('history', 'export', '--since', '7d', '--out', join(dir, 'h.csv'));
    expect(csv.code, csv.stderr).toBe(0);
    const [header, ...rows] = parseCsv(await readFile(join(dir, 'h.csv'), 'utf8'));
    expect(header?.slice(0, 3)).toEqual(['id', 'mapping', 'model']);
    expect(rows.map((r) => r[0])).toEqual(all.map((r) => r.id));
    const col = (name: string) => header!.indexOf(name);
    for (const [i, row] of rows.entries()) {
      const run = runs[i];
      expect(row).toHaveLength(header!.length);
      expect(row[col('status')]).toBe(run.status);
      expect(row[col('finished_at')]).toBe(run.finished_at);
      expect(Number(row[col('extract_total')])).toBe(run.extract.total);
      expect(Number(row[col('load_failed')])).toBe(run.load.failed);
      expect(Number(row[col('load_updated_failed')])).toBe(run.load.updated.failed);
      const errors = row[col('errors')] ? JSON.parse(row[col('errors')]!) : [];
      expect(errors).toEqual(
        run.errors.map((e: Record<string, unknown>) => ({
          code: e.code,
          message: e.message,
          records: e.records,
          recommended_action: e.recommended_action,
        })),
      );
    }

    const stdout = await cli('history', 'export', '--since', '2099-01-01T00:00:00Z', '--format', 'csv');
    expect(parseCsv(stdout.stdout)).toEqual([header]);
    const bad = await cli('history', 'export', '--format', 'xml');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--format jsonl or --format csv');
  });
});
