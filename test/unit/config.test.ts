import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../engine/config/index.js';
import { formatDiagnostic } from '../../engine/diagnostics.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'both');

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-config-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

async function errorsOf(files: Record<string, string>) {
  const dir = await dirWith(files);
  const { diagnostics } = await readConfig(dir);
  return diagnostics
    .filter((d) => d.severity === 'error')
    .map((d) => ({ ...d, file: d.file?.replace(`${dir}/`, '') }));
}

const base = `
sources:
  warehouse: { type: sqlite, path: w.db }
models:
  users:
    source: warehouse
    sql: select id, email from users
    primary_key: id
destinations:
  crm: { type: sqlite, path: crm.db }
mappings:
  to_crm:
    model: users
    destination: crm
    action: upsert
    table: contacts
    key: id
    fields: { email: email }
`;

describe('loading', () => {
  it('reads one config written in YAML and in HCL as the same document', async () => {
    const yaml = await readConfig(join(fixtures, 'yaml'));
    const hcl = await readConfig(join(fixtures, 'hcl'));
    expect(yaml.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(hcl.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(hcl.config!.doc).toEqual(yaml.config!.doc);
    expect(hcl.config!.resources).toEqual(yaml.config!.resources);
    expect(yaml.config!.resources.map((r) => r.address)).toEqual([
      'alert.oncall',
      'connector.crm_mysql',
      'destination.crm',
      'mapping.users_to_crm',
      'model.active_users',
      'segment.vip',
      'segment_integration.export_vips',
      'source.warehouse',
    ]);
  });

  it('keeps env references as references (YAML ${env:X} and HCL env("X"))', async () => {
    const hcl = await readConfig(join(fixtures, 'hcl'));
    const source = hcl.config!.resources.find((r) => r.address === 'source.warehouse')!;
    expect(source.body.url).toBe('${env:WAREHOUSE_URL}');
    const crm = hcl.config!.resources.find((r) => r.address === 'destination.crm')!;
    expect(crm.body.headers).toEqual({ Authorization: 'Bearer ${env:CRM_TOKEN}' });
  });

  it('merges files and names both places of a duplicate resource', async () => {
    const errors = await errorsOf({
      'a.yaml': base,
      'b.yaml': 'models:\n  users:\n    source: warehouse\n    sql: select 1 as id\n    primary_key: id\n',
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.summary).toBe('model.users is defined twice: in a.yaml:5 and in b.yaml:2');
    expect(errors[0]).toMatchObject({ file: 'b.yaml', line: 2, column: 3, code: 'duplicate_resource' });
  });

  it('finds duplicates across YAML and HCL', async () => {
    const errors = await errorsOf({
      'a.yaml': base,
      'b.hcl': 'destination "crm" {\n  type = "file"\n  path = "x.jsonl"\n}\n',
    });
    expect(errors.map((e) => e.summary)).toEqual([
      'destination.crm is defined twice: in a.yaml:10 and in b.hcl:1',
    ]);
  });

  it('reports an empty directory and a missing one', async () => {
    const empty = await dirWith({});
    expect((await readConfig(empty)).diagnostics[0]!.code).toBe('no_config_files');
    expect((await readConfig(join(empty, 'nope'))).diagnostics[0]!.code).toBe('config_dir_unreadable');
  });
});

describe('diagnostics', () => {
  it('points at a YAML syntax error', async () => {
    const errors = await errorsOf({ 'a.yaml': 'models:\n  users:\n    sql: "unterminated\n' });
    expect(errors[0]).toMatchObject({ file: 'a.yaml', code: 'yaml_syntax', line: 4 });
  });

  it('points at an HCL syntax error with the parser position', async () => {
    const errors = await errorsOf({ 'a.hcl': 'model "users" {\n  source = \n}\n' });
    expect(errors[0]).toMatchObject({ file: 'a.hcl', code: 'hcl_syntax', line: 2, column: 12 });
    expect(errors[0]!.summary).toContain('Invalid expression');
  });

  it('suggests the field that was meant', async () => {
    const errors = await errorsOf({ 'a.yaml': base.replace('primary_key: id', 'primary_kye: id') });
    const unknown = errors.find((e) => e.code === 'unknown_field')!;
    expect(unknown).toMatchObject({ file: 'a.yaml', line: 8, column: 5, address: 'model.users' });
    expect(unknown.detail).toBe('did you mean `primary_key`?');
    expect(errors.some((e) => e.code === 'missing_field' && e.summary.includes('primary_key'))).toBe(true);
  });

  it('reports wrong types, enums and unknown sections at their nodes', async () => {
    const errors = await errorsOf({
      'a.yaml': `${base.replace('action: upsert', 'action: upsrt').replace('type: sqlite, path: crm.db', 'type: sqlite, path: 42')}\nmodles: {}\n`,
    });
    const text = errors.map((e) => formatDiagnostic(e));
    expect(text).toContain('a.yaml:10:30: error: destination.crm: `path` must be a string, not number `42`');
    expect(errors.find((e) => e.code === 'invalid_value')).toMatchObject({
      line: 15,
      column: 13,
      detail: 'did you mean `upsert`?',
    });
    expect(errors.find((e) => e.code === 'unknown_section')).toMatchObject({
      line: 20,
      detail: 'did you mean `models`?',
    });
    expect(errors).toHaveLength(3);
  });

  it('reports missing references with a suggestion', async () => {
    const errors = await errorsOf({ 'a.yaml': base.replace('model: users', 'model: user') });
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'missing_reference',
        summary: 'mapping.to_crm refers to model `user`, which is not defined',
        detail: 'did you mean `users`?',
        line: 13,
        column: 12,
      }),
    ]);
  });

  it('checks that the action exists for the destination and has its options', async () => {
    const errors = await errorsOf({
      'a.yaml': base.replace('action: upsert', 'action: post').replace('    key: id\n', ''),
    });
    expect(errors.map((e) => e.code)).toEqual(['unsupported_action']);
    const errors2 = await errorsOf({ 'a.yaml': base.replace('    key: id\n', '') });
    expect(errors2.map((e) => e.summary)).toEqual(['mapping.to_crm: action `upsert` needs `key`']);
  });

  it('rejects invalid schedules and durations', async () => {
    const errors = await errorsOf({
      'a.yaml': base.replace(
        '    fields:',
        '    schedule: { cron: "61 * * * *" }\n    retry: { max_age: 2weeks }\n    fields:',
      ),
    });
    expect(errors.map((e) => e.code).sort()).toEqual(['invalid_duration', 'invalid_schedule']);
  });

  it('reports template errors at their position in the query', async () => {
    const errors = await errorsOf({
      'a.yaml': `connectors:
  c: { type: sqlite, path: c.db }
segments:
  vip: { id: 1, name: VIP, key: CustomID, members: managed }
segment_integrations:
  s:
    connector: c
    segments: all
    queries:
      add: "INSERT INTO t VALUES {segment_idd}"
      remove: "DELETE FROM t WHERE id IN ({batch_in \\"Email\\"})"
`,
    });
    expect(errors.map((e) => e.code)).toEqual(['template_error', 'template_unknown_field']);
    expect(errors[0]!.summary).toContain('query `add`');
    expect(errors[0]!.detail).toContain('segment_id');
    expect(errors[1]!.summary).toContain('profile field `Email`');
  });

  it('rejects bad names and bad env references', async () => {
    const errors = await errorsOf({
      'a.yaml': 'sources:\n  Ware-House: { type: postgres, url: "${ENV:X}" }\n',
    });
    expect(errors.map((e) => e.code).sort()).toEqual(['invalid_env_reference', 'invalid_name']);
  });

  it('warns about inline passwords and redacts them', async () => {
    const dir = await dirWith({
      'a.yaml': base.replace('type: sqlite, path: w.db', 'type: postgres, url: "postgres://u:hunter2@db/w"'),
    });
    const { diagnostics, config } = await readConfig(dir);
    const warning = diagnostics.find((d) => d.code === 'inline_secret')!;
    expect(warning.severity).toBe('warning');
    expect(JSON.stringify(diagnostics)).not.toContain('hunter2');
    const source = config!.resources.find((r) => r.address === 'source.warehouse')!;
    expect(source.body.url).toBe('postgres://u:***@db/w');
    expect(source.sensitive_digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('collects every problem at once', async () => {
    const errors = await errorsOf({
      'a.yaml': base.replace('model: users', 'model: nope').replace('source: warehouse', 'source: nowhere'),
      'b.hcl': 'mapping "x" {\n  model = "users"\n}\n',
    });
    expect(errors.length).toBeGreaterThanOrEqual(4);
    expect(new Set(errors.map((e) => e.file))).toEqual(new Set(['a.yaml', 'b.hcl']));
  });
});
