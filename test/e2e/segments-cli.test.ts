/**
 * `backflow segments …` as a user runs it (the built CLI; `npm run build` first), on SQLite files:
 * apply, add and remove profiles from JSONL and CSV files, flush, a failing query, stats, queue.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backflow } from './cli.js';

const CONFIG = `
connectors:
  crm: { type: sqlite, path: crm.db }
segments:
  vip: { id: 42, name: VIP customers, key: CustomID, members: managed, fields: [Email] }
segment_integrations:
  out:
    connector: crm
    segments: [vip]
    batch: { size: 100, timeout: 10s }
    queries:
      add: |
        INSERT INTO mysegment (segId, clientId, email) VALUES
        {for $index, $lead = $batch}({segment_id}, '{$lead.CustomID}', {$lead.Email}){autocomma}{end}
        ON CONFLICT (segId, clientId) DO UPDATE SET email = excluded.email
      remove: DELETE FROM mysegment WHERE segId = {segment_id} AND clientId IN ({batch_in "CustomID"})
      clear: DELETE FROM mysegment WHERE segId = {segment_id}
      upsert_segment: INSERT INTO segments (id, name) VALUES ({segment_id}, '{segment_name}') ON CONFLICT (id) DO UPDATE SET name = excluded.name
`;

describe('backflow segments', () => {
  let dir: string;
  let crm: BetterSqlite3.Database;
  const run = (...args: string[]) => backflow(['--dir', dir, ...args], { cwd: dir });
  const members = () => crm.prepare('SELECT clientId, email FROM mysegment ORDER BY clientId').all();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backflow-seg-cli-'));
    await writeFile(join(dir, 'main.yaml'), CONFIG);
    crm = new BetterSqlite3(join(dir, 'crm.db'));
    crm.exec(`CREATE TABLE mysegment (segId INTEGER, clientId TEXT, email TEXT, PRIMARY KEY (segId, clientId));
              CREATE TABLE segments (id INTEGER PRIMARY KEY, name TEXT);`);
    const applied = await run('apply', '--auto-approve');
    expect(applied.code, applied.stderr).toBe(0);
  });

  it('refuses a file with a profile that lacks the key, naming the file and line, and queues nothing', async () => {
    await writeFile(join(dir, 'bad.jsonl'), '{"CustomID": "a"}\n{"Email": "x@y"}\nnot json\n');
    const r = await run('segments', 'add', 'vip', '--file', 'bad.jsonl');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.jsonl:2: the profile has no "CustomID"');
    expect(r.stderr).toContain('bad.jsonl:3: not valid JSON');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace for a user's mistake
    // Only the segment's upsert from apply waits: no profile was queued.
    const q = await run('segments', 'queue', '--json');
    expect(JSON.parse(q.stdout)).toMatchObject([
      { integration: 'out', segment: 'vip', events: 1, profiles: 0 },
    ]);
  });

  it('queues profiles from JSON Lines, waits for the batch, and flushes with --all', async () => {
    await writeFile(
      join(dir, 'profiles.jsonl'),
      `${[
        { CustomID: 'c-1', Email: 'one@example.com' },
        { CustomID: "O'Reilly", Email: "'; DROP TABLE mysegment; --" },
        { CustomID: 'c-3', Email: null, Ignored: 'not a declared field' },
      ]
        .map((p) => JSON.stringify(p))
        .join('\n')}\n`,
    );
    const added = await run('segments', 'add', 'vip', '--file', 'profiles.jsonl');
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('3 profiles added to segment vip: 3 events queued for out');

    const depth = JSON.parse((await run('segments', 'queue', '--json')).stdout);
    expect(depth).toMatchObject([{ integration: 'out', segment: 'vip', profiles: 3, paused: false }]);

    // Not due yet (3 < batch.size, 10 s not passed); the segment upsert from apply runs at once.
    const due = await run('segments', 'flush');
    expect(due.code, due.stderr).toBe(0);
    expect(due.stdout).toContain('out/vip  upsert_segment');
    expect(due.stdout).toContain('waiting: out/vip — not due yet');
    expect(crm.prepare('SELECT id, name FROM segments').all()).toEqual([{ id: 42, name: 'VIP customers' }]);
    expect(members()).toEqual([]);

    const all = await run('segments', 'flush', 'out', '--all', '--json');
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({
      queries: 1,
      failed: 0,
      profiles: 3,
      batches: [{ kind: 'add', profiles: 3 }],
    });
    expect(members()).toEqual([
      { clientId: "O'Reilly", email: "'; DROP TABLE mysegment; --" },
      { clientId: 'c-1', email: 'one@example.com' },
      { clientId: 'c-3', email: null },
    ]);
  });

  it('removes profiles listed in a CSV file', async () => {
    await writeFile(join(dir, 'gone.csv'), 'CustomID\nc-1\n"O\'Reilly"\n');
    expect((await run('segments', 'remove', 'vip', '--file', 'gone.csv')).code).toBe(0);
    expect((await run('segments', 'flush', '--all')).code).toBe(0);
    expect(members()).toEqual([{ clientId: 'c-3', email: null }]);
  });

  it('keeps a failed batch, exits 1, and reports the error in stats and queue', async () => {
    crm.exec('DROP TABLE mysegment');
    await writeFile(join(dir, 'more.jsonl'), '{"CustomID": "c-4"}\n');
    expect((await run('segments', 'add', 'vip', '--file', 'more.jsonl')).code).toBe(0);
    const failed = await run('segments', 'flush', '--all');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(
      /out\/vip {2}add 1 profile failed \(attempt 1, next at .*\): .*no such table: mysegment/,
    );

    const queue = await run('segments', 'queue');
    expect(queue.stdout).toMatch(/out\s+vip\s+1\s+1\s+1\s+.*failing \(attempt 1/);

    const stats = JSON.parse((await run('segments', 'stats', 'out', '--since', '1h', '--json')).stdout);
    expect(stats).toMatchObject({ integration: 'out', successful_queries: 3, failed_queries: 1 });
    expect(stats.errors).toHaveLength(1);
    expect(stats.errors[0]).toMatchObject({ kind: 'add', segment: 'vip' });
    expect(stats.errors[0].message).toContain('no such table: mysegment');
    expect(Date.parse(stats.errors[0].time)).toBeGreaterThan(Date.now() - 3_600_000);

    const text = await run('segments', 'stats', 'out', '--since', '1h');
    expect(text.stdout).toContain('successful queries: 3');
    expect(text.stdout).toMatch(/errors:\n\s+\S+Z\s+add\s+vip\s+.*no such table: mysegment/);

    crm.exec(
      'CREATE TABLE mysegment (segId INTEGER, clientId TEXT, email TEXT, PRIMARY KEY (segId, clientId))',
    );
    const retried = await run('segments', 'flush', '--all');
    expect(retried.code, retried.stdout).toBe(0);
    expect(members()).toEqual([{ clientId: 'c-4', email: null }]);
  });

  it('resyncs the current membership after a clear', async () => {
    crm.exec(`INSERT INTO mysegment VALUES (42, 'stray', NULL)`);
    const r = await run('segments', 'resync', 'vip', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      kind: 'resync',
      profiles: 2,
      integrations: ['out'],
      events: 3,
    });
    expect((await run('segments', 'flush', '--all')).code).toBe(0);
    expect(members()).toEqual([
      { clientId: 'c-3', email: null },
      { clientId: 'c-4', email: null },
    ]);
    expect((await run('segments', 'clear', 'vip')).code).toBe(0);
    expect((await run('segments', 'flush')).code).toBe(0);
    expect(members()).toEqual([]);
  });

  it('names unknown segments and integrations with a hint', async () => {
    const seg = await run('segments', 'clear', 'vips');
    expect(seg.code).toBe(1);
    expect(seg.stderr).toContain('segment vips is not in the applied state');
    expect(seg.stderr).toContain('did you mean `vip`?');
    const stats = await run('segments', 'stats', 'nope');
    expect(stats.code).toBe(1);
    expect(stats.stderr).toContain('segment integration nope is not in the applied state');
  });

  it('discards a batch whose query keeps failing, keeps its profiles, and the queue goes on', async () => {
    // A profile the target refuses fails its whole batch on every attempt.
    crm.exec(`CREATE TRIGGER no_bad BEFORE INSERT ON mysegment WHEN new.clientId = 'bad'
              BEGIN SELECT raise(abort, 'bad profile'); END;`);
    await writeFile(join(dir, 'poison.jsonl'), '{"CustomID": "bad"}\n{"CustomID": "c-5"}\n');
    expect((await run('segments', 'add', 'vip', '--file', 'poison.jsonl')).code).toBe(0);
    expect((await run('segments', 'flush', '--all')).code).toBe(1);
    await writeFile(join(dir, 'later.jsonl'), '{"CustomID": "c-6"}\n');
    expect((await run('segments', 'add', 'vip', '--file', 'later.jsonl')).code).toBe(0);
    // The later profile waits behind the failing batch.
    expect((await run('segments', 'flush', '--all')).code).toBe(1);
    expect(members().map((m) => (m as { clientId: string }).clientId)).not.toContain('c-6');

    const refused = await run('segments', 'discard', 'out', '--segment', 'vip');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the failed batch of out/vip holds 2 profiles: say where to keep them');
    const discarded = await run('segments', 'discard', 'out', '--segment', 'vip', '--out', 'kept.jsonl');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect(discarded.stdout).toMatch(
      /Discarded the add batch at the head of out\/vip \(2 profiles, 2 failed attempts; last error: .*bad profile\)/,
    );
    expect(discarded.stdout).toContain('`backflow segments add vip --file kept.jsonl` queues them again');
    const kept = (await readFile(join(dir, 'kept.jsonl'), 'utf8')).trim().split('\n');
    expect(kept.map((l) => JSON.parse(l).CustomID)).toEqual(['bad', 'c-5']);

    // The queue goes on without it, and the stats say what was discarded and why.
    expect((await run('segments', 'flush', '--all')).code).toBe(0);
    expect(members().map((m) => (m as { clientId: string }).clientId)).toContain('c-6');
    const stats = JSON.parse((await run('segments', 'stats', 'out', '--since', '1h', '--json')).stdout);
    expect(
      stats.errors.some((e: { message: string }) =>
        e.message.startsWith('discarded after 2 failed attempts (last error: '),
      ),
    ).toBe(true);

    const none = await run('segments', 'discard', 'out', '--segment', 'vip', '--drop');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('the queue out/vip has no failed batch at its head: nothing to discard');
    const again = await run('segments', 'discard', 'out', '--segment', 'vip', '--out', 'kept.jsonl');
    expect(again.code).toBe(1);
    crm.exec('DROP TRIGGER no_bad');
  });
});
