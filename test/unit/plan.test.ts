import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderPlanText } from '../../cli/render/plan-text.js';
import { readConfig } from '../../engine/config/index.js';
import { LockHeldError, UserError } from '../../engine/errors.js';
import { applyPlan } from '../../engine/plan/apply.js';
import { plan } from '../../engine/plan/plan.js';
import { LocalStateBackend } from '../../engine/state/local.js';

const config = (fields = 'email: email', sql = 'select id, email from users', extra = '') => `
sources:
  warehouse: { type: sqlite, path: w.db }
models:
  users: { source: warehouse, sql: "${sql}", primary_key: id }
destinations:
  crm: { type: sqlite, path: crm.db }
connectors:
  c: { type: sqlite, path: c.db }
mappings:
  to_crm:
    model: users
    destination: crm
    action: upsert
    table: contacts
    key: id
    fields: { ${fields} }
${extra}`;

const segments = (name: string) => `
segments:
  vip: { id: 7, name: "${name}", key: CustomID, members: managed }
segment_integrations:
  out:
    connector: c
    segments: all
    queries:
      add: "INSERT INTO s VALUES {for $index, $lead = $batch}({segment_id}, {$lead.CustomID}){autocomma}{end}"
      remove: "DELETE FROM s WHERE id IN ({batch_in \\"CustomID\\"})"
      upsert_segment: "INSERT OR REPLACE INTO segs VALUES ({segment_id}, {segment_name})"
      delete_segment: "DELETE FROM segs WHERE id = {segment_id}"
`;

async function workspace(text: string) {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-plan-'));
  await writeFile(join(dir, 'main.yaml'), text);
  return dir;
}

async function load(dir: string, text: string) {
  await writeFile(join(dir, 'main.yaml'), text);
  const r = await readConfig(dir);
  if (!r.config) throw new Error(JSON.stringify(r.diagnostics));
  return r.config;
}

describe('plan and apply', () => {
  it('creates, then shows no changes, then updates with a full_resync effect', async () => {
    const dir = await workspace('');
    const backend = new LocalStateBackend(join(dir, '.backflow/state.json'));
    const c1 = await load(dir, config());
    const p1 = plan({ config: c1, state: await backend.read() });
    expect(p1.summary).toEqual({ create: 5, update: 0, delete: 0 });
    expect(p1.changes.find((c) => c.address === 'mapping.to_crm')!.effects[0]).toMatchObject({
      kind: 'full_resync',
    });
    const a1 = await applyPlan({ plan: p1, backend });
    expect(a1.state.serial).toBe(1);
    expect(a1.state.lineage).toMatch(/^[0-9a-f-]{36}$/);

    const p2 = plan({ config: c1, state: await backend.read() });
    expect(p2.changes).toEqual([]);
    expect(renderPlanText(p2)).toContain('No changes.');
    const a2 = await applyPlan({ plan: p2, backend });
    expect(a2.changed).toBe(false);
    expect((await backend.read())!.serial).toBe(1); // a no-op apply does not bump serial

    const c3 = await load(dir, config('email: email, name: name', 'select id, email, name from users'));
    const p3 = plan({ config: c3, state: await backend.read() });
    expect(p3.summary).toEqual({ create: 0, update: 2, delete: 0 });
    const mapping = p3.changes.find((c) => c.address === 'mapping.to_crm')!;
    expect(mapping.diff).toEqual([{ path: 'fields.name', before: null, after: 'name' }]);
    expect(mapping.effects).toEqual([
      { kind: 'full_resync', mapping: 'to_crm', reason: 'its fields changed' },
    ]);
    const model = p3.changes.find((c) => c.address === 'model.users')!;
    expect(model.effects).toEqual([
      { kind: 'full_resync', mapping: 'to_crm', reason: 'model.users sql changed' },
    ]);
    const text = renderPlanText(p3);
    expect(text).toContain('  # mapping.to_crm will be updated in-place');
    expect(text).toContain('      + fields.name = null -> "name"');
    expect(text).toContain('Effects on data:');
    expect(text.trimEnd().split('\n').pop()).toBe('Plan: 0 to create, 2 to update, 0 to delete.');
  });

  it('refuses a stale saved plan and names both serials', async () => {
    const dir = await workspace('');
    const backend = new LocalStateBackend(join(dir, '.backflow/state.json'));
    const c1 = await load(dir, config());
    const saved = plan({ config: c1, state: await backend.read() });
    await applyPlan({ plan: plan({ config: c1, state: null }), backend });
    await expect(applyPlan({ plan: saved, backend })).rejects.toThrow(
      /stale: it was made against state serial 0, but the state is now at serial 1/,
    );
  });

  it('plans segment effects: upsert on create and rename, delete on removal, and disabling', async () => {
    const dir = await workspace('');
    const backend = new LocalStateBackend(join(dir, '.backflow/state.json'));
    const p1 = plan({ config: await load(dir, config() + segments('VIP')), state: null });
    expect(p1.changes.flatMap((c) => c.effects).filter((e) => e.kind === 'upsert_segment')).toEqual([
      { kind: 'upsert_segment', segment: 'vip', integration: 'out' },
    ]);
    await applyPlan({ plan: p1, backend });
    const p2 = plan({
      config: await load(dir, config() + segments('Very important')),
      state: await backend.read(),
    });
    expect(p2.changes.map((c) => [c.address, c.effects.map((e) => e.kind)])).toEqual([
      ['segment.vip', ['upsert_segment']],
    ]);
    await applyPlan({ plan: p2, backend });
    const removed =
      config().replace('    key: id\n', '    key: id\n    enabled: false\n') +
      segments('x')
        .replace(/ {2}vip: .*\n/, '')
        .replace('segments:\n', 'segments: {}\n');
    const p3 = plan({ config: await load(dir, removed), state: await backend.read() });
    const effects = p3.changes.flatMap((c) => c.effects);
    expect(effects).toContainEqual({ kind: 'delete_segment', segment: 'vip', integration: 'out' });
    expect(effects).toContainEqual({ kind: 'mapping_disabled', mapping: 'to_crm' });
    expect(renderPlanText(p3)).toContain('# (because segment.vip is not in the configuration)');
  });

  it('applies records pending effects with ids and keeps serial/lineage', async () => {
    const dir = await workspace('');
    const backend = new LocalStateBackend(join(dir, '.backflow/state.json'));
    const a = await applyPlan({ plan: plan({ config: await load(dir, config()), state: null }), backend });
    expect(a.newEffects.map((e) => e.id)).toEqual(['1:0']);
    const text = await readFile(join(dir, '.backflow/state.json'), 'utf8');
    const doc = JSON.parse(text);
    expect(doc.version).toBe(1);
    expect(doc.resources.map((r: { address: string }) => r.address)).toEqual(
      [...doc.resources.map((r: { address: string }) => r.address)].sort(),
    );
  });
});

describe('local state', () => {
  it('fails a second lock at once naming the holder, and unlocks by id', async () => {
    const dir = await workspace('');
    const backend = new LocalStateBackend(join(dir, '.backflow/state.json'));
    const held = await backend.lock({ operation: 'apply', who: 'alice@ci' });
    const err = await backend.lock({ operation: 'apply' }).catch((e) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect(err.message).toContain('alice@ci (apply)');
    expect(err.hint).toContain(`backflow state unlock ${held.info.id}`);
    await expect(backend.forceUnlock('wrong')).rejects.toThrow(/does not match/);
    await backend.forceUnlock(held.info.id);
    const again = await backend.lock({ operation: 'apply' });
    await again.release();
    expect(await backend.currentLock()).toBeNull();
  });

  it('refuses a corrupt or unknown-version state and never overwrites it', async () => {
    const dir = await workspace('');
    const path = join(dir, 'state.json');
    const backend = new LocalStateBackend(path);
    await writeFile(path, '{"version": 1, "serial": ');
    await expect(backend.read()).rejects.toThrow(UserError);
    await expect(backend.read()).rejects.toThrow(/corrupt/);
    await writeFile(path, '{"version": 99, "serial": 1, "lineage": "x", "resources": []}');
    await expect(backend.read()).rejects.toThrow(/version 99/);
    const c = await load(dir, config());
    await expect(applyPlan({ plan: plan({ config: c, state: null }), backend })).rejects.toThrow(
      /version 99/,
    );
    expect(await readFile(path, 'utf8')).toContain('"version": 99');
  });
});
