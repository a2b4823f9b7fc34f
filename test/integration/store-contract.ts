/**
 * The RuntimeStore contract: every store (SQLite, PostgreSQL) passes these same tests.
 * `open` must return an empty, migrated store on each call; the suite closes it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RuntimeStore } from '../../engine/store/types.js';
import { emptyRun, type RunRecord, type SyncRun } from '../../engine/sync/types.js';

export function storeContract(name: string, open: () => Promise<RuntimeStore>): void {
  describe(`RuntimeStore contract: ${name}`, () => {
    let store: RuntimeStore;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    const keys = (n: number, prefix = 'k') =>
      Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
    const outcomes = (runId: string, entries: [string, string | null][]) =>
      store.addOutcomes({ runId, outcomes: entries.map(([key, hash]) => ({ key, hash })) });

    /** Loads `rows` (key → hash) as a run whose every record was delivered, and commits it. */
    async function syncAll(mapping: string, runId: string, rows: Record<string, string>): Promise<void> {
      await outcomes(runId, Object.entries(rows));
      await store.commitSnapshot({ mapping, runId });
    }

    /** The snapshot, read page by page. */
    async function snapshot(mapping: string, pageSize = 7): Promise<Record<string, string>> {
      const out: Record<string, string> = {};
      for await (const page of store.snapshotPages({ mapping, pageSize }))
        for (const [key, hash] of page) out[key] = hash;
      return out;
    }

    it('migrates idempotently', async () => {
      await store.migrate();
      await store.migrate();
      expect(await store.snapshotSize('m')).toBe(0);
      expect(['sqlite', 'postgres']).toContain(store.kind);
    });

    describe('runs', () => {
      function run(id: string, over: Partial<SyncRun> = {}): SyncRun {
        return {
          ...emptyRun({
            id,
            mapping: 'users_to_crm',
            model: 'active_users',
            source: 'warehouse',
            destination: 'crm',
            action: 'upsert',
            trigger: 'manual',
            started_at: '2024-05-01T10:00:00.000Z',
          }),
          ...over,
        };
      }

      it('round-trips a run and replaces it on update', async () => {
        const r = run('r1');
        await store.insertRun(r);
        expect(await store.getRun('r1')).toEqual(r);
        expect(await store.getRun('nope')).toBeUndefined();
        const done: SyncRun = {
          ...r,
          status: 'partial_success',
          finished_at: '2024-05-01T10:00:05.250Z',
          duration_ms: 5250,
          extract: { total: 10, added: 3, updated: 2, deleted: 1 },
          load: {
            attempted: 6,
            succeeded: 5,
            failed: 1,
            added: { succeeded: 3, failed: 0 },
            updated: { succeeded: 1, failed: 1 },
            deleted: { succeeded: 1, failed: 0 },
          },
          errors: [
            {
              code: 'check_violation',
              message: 'new row violates check constraint "email" — O\'Reilly 🎉',
              records: 1,
              recommended_action: 'fix it',
              sample_payloads: [{ email: 'x', nested: { a: [1, null] } }],
            },
          ],
        };
        await store.updateRun(done);
        expect(await store.getRun('r1')).toEqual(done);
        expect(await store.listUnfinishedRuns()).toEqual([]);
      });

      it('refuses to update a run that was never inserted', async () => {
        await expect(store.updateRun(run('ghost'))).rejects.toThrow(/ghost/);
      });

      it('lists unfinished runs', async () => {
        await store.insertRun(run('a', { started_at: '2024-05-01T10:00:00.000Z' }));
        await store.insertRun(run('b', { status: 'success', finished_at: '2024-05-01T10:01:00.000Z' }));
        await store.insertRun(run('c', { mapping: 'other', started_at: '2024-05-01T09:00:00.000Z' }));
        expect((await store.listUnfinishedRuns()).map((r) => r.id).sort()).toEqual(['a', 'c']);
      });

      describe('listRuns', () => {
        beforeEach(async () => {
          const rows: [string, Partial<SyncRun>][] = [
            ['r1', { mapping: 'users_to_crm', status: 'success', started_at: '2024-05-01T08:00:00.000Z' }],
            ['r2', { mapping: 'users_to_crm', status: 'failed', started_at: '2024-05-02T08:00:00.000Z' }],
            [
              'r3',
              {
                mapping: 'orders_to_hub',
                model: 'orders',
                destination: 'hubspot',
                status: 'failed',
                started_at: '2024-05-01T12:00:00.000Z',
              },
            ],
            [
              'r4',
              {
                mapping: 'orders_to_hub',
                model: 'orders',
                destination: 'hubspot',
                status: 'partial_success',
                started_at: '2024-05-03T08:00:00.000Z',
              },
            ],
            [
              'r5',
              {
                mapping: 'events_to_s3',
                model: 'events',
                source: 'Lake',
                destination: 'bucket',
                status: 'in_progress',
                started_at: '2024-05-03T09:00:00.000Z',
              },
            ],
          ];
          for (const [id, over] of rows) await store.insertRun(run(id, over));
        });
        const ids = async (filter: Parameters<RuntimeStore['listRuns']>[0]) =>
          (await store.listRuns(filter)).map((r) => r.id);

        it('lists newest first, with a limit', async () => {
          expect(await ids({})).toEqual(['r5', 'r4', 'r2', 'r3', 'r1']);
          expect(await ids({ limit: 2 })).toEqual(['r5', 'r4']);
          expect((await store.listRuns({ limit: 1 }))[0]).toEqual(await store.getRun('r5'));
        });

        it('filters by status, time window, mapping, model and destination', async () => {
          expect(await ids({ status: ['failed'] })).toEqual(['r2', 'r3']);
          expect(await ids({ status: ['failed', 'in_progress'] })).toEqual(['r5', 'r2', 'r3']);
          expect(await ids({ status: [] })).toHaveLength(5);
          expect(await ids({ since: '2024-05-02T08:00:00.000Z' })).toEqual(['r5', 'r4', 'r2']);
          expect(await ids({ until: '2024-05-01T12:00:00.000Z' })).toEqual(['r3', 'r1']);
          expect(await ids({ since: '2024-05-01T09:00:00Z', until: '2024-05-03T08:30:00+00:00' })).toEqual([
            'r4',
            'r2',
            'r3',
          ]);
          expect(await ids({ mappings: ['orders_to_hub', 'events_to_s3'] })).toEqual(['r5', 'r4', 'r3']);
          expect(await ids({ models: ['active_users'] })).toEqual(['r2', 'r1']);
          expect(await ids({ destinations: ['hubspot', 'bucket'] })).toEqual(['r5', 'r4', 'r3']);
          expect(await ids({ destinations: ['hubspot'], status: ['failed'] })).toEqual(['r3']);
        });

        it('searches mapping, model, destination, source and id, ignoring case', async () => {
          expect(await ids({ search: 'HUB' })).toEqual(['r4', 'r3']);
          expect(await ids({ search: 'lake' })).toEqual(['r5']);
          expect(await ids({ search: 'active_' })).toEqual(['r2', 'r1']);
          expect(await ids({ search: 'r3' })).toEqual(['r3']);
          expect(await ids({ search: '%' })).toEqual([]);
          expect(await ids({ search: '_' })).toHaveLength(5);
        });

        it('keeps the latest run per mapping, then filters it by status', async () => {
          expect(await ids({ latestPerMapping: true })).toEqual(['r5', 'r4', 'r2']);
          // A mapping whose latest run succeeded is not "failed" because of an older run.
          expect(await ids({ latestPerMapping: true, status: ['failed'] })).toEqual(['r2']);
          expect(await ids({ latestPerMapping: true, status: ['success'] })).toEqual([]);
          // The time window picks the latest run inside it.
          expect(await ids({ latestPerMapping: true, until: '2024-05-01T23:59:59Z' })).toEqual(['r3', 'r1']);
          expect(await ids({ latestPerMapping: true, limit: 1 })).toEqual(['r5']);
          expect(await ids({ latestPerMapping: true, search: 'users' })).toEqual(['r2']);
        });
      });

      it("prunes old finished runs with their records, keeping each mapping's newest run and newest success", async () => {
        const day = (d: number) => `2024-05-${String(d).padStart(2, '0')}T08:00:00.000Z`;
        const rows: [string, string, SyncRun['status'], number][] = [
          ['m1', 'm', 'success', 1],
          ['m2', 'm', 'failed', 2],
          ['m3', 'm', 'success', 3], // the newest success of m: kept
          ['m4', 'm', 'failed', 4], // the newest run of m: kept
          ['m5', 'm', 'failed', 25], // recent
          ['o1', 'o', 'in_progress', 1], // unfinished: kept
          ['o2', 'o', 'failed', 2],
          ['p1', 'p', 'partial_success', 2], // the only run of p
        ];
        for (const [id, mapping, status, d] of rows) {
          await store.insertRun(run(id, { mapping, status, started_at: day(d) }));
          await store.addRunRecords(id, [
            { key: `${id}-ok`, change: 'added', status: 'ok', payload: null },
            {
              key: `${id}-bad`,
              change: 'added',
              status: 'failed',
              code: 'x',
              message: 'y',
              payload: { a: 1 },
            },
          ]);
        }
        expect(await store.pruneRuns({ before: day(20) })).toBe(3);
        const left = (await store.listRuns({})).map((r) => r.id).sort();
        expect(left).toEqual(['m3', 'm5', 'o1', 'o2', 'p1']);
        for (const id of ['m1', 'm2', 'm4']) {
          expect(await store.getRun(id)).toBeUndefined();
          expect(await store.listRunRecords(id, {})).toEqual([]);
          expect(await store.listRunRecords(id, { status: 'failed' })).toEqual([]);
        }
        expect((await store.listRunRecords('m3', {})).map((r) => r.key)).toEqual(['m3-ok', 'm3-bad']);
        expect(await store.pruneRuns({ before: day(20) })).toBe(0);
        // What is left is each mapping's newest run or newest success (or unfinished), however old.
        expect(await store.pruneRuns({ before: day(30) })).toBe(0);
      });

      it('keeps run records in order, filtered by status and paged', async () => {
        await store.insertRun(run('r1'));
        const records: RunRecord[] = [
          { key: '1', change: 'added', status: 'ok', payload: { email: 'a@x', traits: { plan: 'pro' } } },
          {
            key: '2',
            change: 'updated',
            status: 'failed',
            code: 'check_violation',
            message: 'bad email',
            payload: { email: 'nope' },
          },
          { key: '3', change: 'deleted', status: 'ok', payload: null },
        ];
        await store.addRunRecords('r1', records);
        await store.addRunRecords('r1', [
          {
            key: '["4","b"]',
            change: 'added',
            status: 'expired',
            code: 'expired',
            message: "O'Reilly 🎉",
            payload: { x: null },
          },
        ]);
        await store.addRunRecords('other', [
          { key: '9', change: 'added', status: 'failed', code: 'c', message: 'm', payload: null },
        ]);
        await store.addRunRecords('r1', []);

        const all = await store.listRunRecords('r1', {});
        expect(all.map((r) => r.key)).toEqual(['1', '2', '3', '["4","b"]']);
        expect(all[0]).toEqual(records[0]);
        expect(all[1]).toEqual(records[1]);
        expect(all[2]).toEqual(records[2]);
        expect((await store.listRunRecords('r1', { status: 'failed' })).map((r) => r.key)).toEqual(['2']);
        expect((await store.listRunRecords('r1', { status: 'expired' }))[0]?.message).toBe("O'Reilly 🎉");
        expect((await store.listRunRecords('r1', { limit: 2 })).map((r) => r.key)).toEqual(['1', '2']);
        expect((await store.listRunRecords('r1', { limit: 2, offset: 2 })).map((r) => r.key)).toEqual([
          '3',
          '["4","b"]',
        ]);
        expect((await store.listRunRecords('r1', { offset: 3 })).map((r) => r.key)).toEqual(['["4","b"]']);
        expect(await store.listRunRecords('none', {})).toEqual([]);
      });
    });

    describe('snapshot and outcomes', () => {
      it('lists the snapshot in key order (byte order), page by page', async () => {
        const odd = ["O'Reilly", '"q"', '\\', '["1","x"]', 'Zoë 🎉', ' ', 'a\nb', 'ä', 'A', 'a', 'B'];
        const rows = Object.fromEntries(odd.map((k, i) => [k, `h${i}`]));
        await syncAll('m', 'run1', rows);
        const pages: (readonly (readonly [string, string])[])[] = [];
        for await (const page of store.snapshotPages({ mapping: 'm', pageSize: 4 })) pages.push(page);
        expect(pages.map((p) => p.length)).toEqual([4, 4, 3]);
        const byteOrder = [...odd].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect(pages.flat().map(([k]) => k)).toEqual(byteOrder);
        expect(await snapshot('m')).toEqual(rows);
        // Nothing in the snapshot: no pages at all.
        for await (const page of store.snapshotPages({ mapping: 'empty', pageSize: 10 }))
          expect(page).toEqual([]);
      });

      it('gives the same pages as text, and as entries where a key makes the text ambiguous', async () => {
        const odd = ["O'Reilly", '"q"', '\\', '', 'Zoë 🎉', 'a\nb', 'tab\there', 'ä', 'A', 'a', 'B'];
        const rows = Object.fromEntries(odd.map((k, i) => [k, `h${i}`]));
        await syncAll('m', 'run1', rows);
        const pages: (readonly (readonly [string, string])[])[] = [];
        for await (const page of store.snapshotPages({ mapping: 'm', pageSize: 4 })) pages.push(page);
        const texts: { text: string; count: number; entries: readonly (readonly [string, string])[] }[] = [];
        for await (const page of store.snapshotText({ mapping: 'm', pageSize: 4 }))
          texts.push({ text: page.text, count: page.count, entries: await page.entries() });
        expect(texts.map((t) => t.count)).toEqual([4, 4, 3]);
        expect(texts.map((t) => t.entries)).toEqual(pages);
        texts.forEach((t, i) => {
          // Lines in any order; the text is exact wherever no key holds a tab or a newline.
          const lines = t.text.split('\n').sort();
          if (!pages[i]!.some(([k]) => /[\t\n]/.test(k)))
            expect(lines).toEqual(pages[i]!.map(([k, h]) => `${k}\t${h}`).sort());
        });
        for await (const _ of store.snapshotText({ mapping: 'empty', pageSize: 10 }))
          throw new Error('an empty snapshot has no pages');
      });

      it('pages exactly at page boundaries', async () => {
        await syncAll('m', 'run1', Object.fromEntries(keys(20).map((k) => [k, 'h'])));
        const sizes: number[] = [];
        for await (const page of store.snapshotPages({ mapping: 'm', pageSize: 10 })) sizes.push(page.length);
        expect(sizes).toEqual([10, 10]);
      });

      it('commits outcomes at once: new hashes, and null hashes deleting keys', async () => {
        await syncAll('m', 'run1', { a: 'ha', b: 'hb', c: 'hc', e: 'he' });
        await outcomes('run2', [
          ['a', 'ha2'],
          ['new1', 'hn1'],
        ]);
        await outcomes('run2', [
          ['e', null],
          ['never-there', null],
        ]);
        // Nothing shows before the commit.
        expect(await snapshot('m')).toEqual({ a: 'ha', b: 'hb', c: 'hc', e: 'he' });
        await store.commitSnapshot({ mapping: 'm', runId: 'run2' });
        expect(await snapshot('m')).toEqual({ a: 'ha2', b: 'hb', c: 'hc', new1: 'hn1' });
        expect(await store.snapshotSize('m')).toBe(4);
        // The outcomes are gone: committing the same run again changes nothing.
        await store.commitSnapshot({ mapping: 'm', runId: 'run2' });
        await store.commitSnapshot({ mapping: 'm', runId: 'never-staged' });
        expect(await snapshot('m')).toEqual({ a: 'ha2', b: 'hb', c: 'hc', new1: 'hn1' });
      });

      it('discards an aborted run without touching the snapshot', async () => {
        await syncAll('m', 'run1', { a: 'ha', b: 'hb' });
        await outcomes('run2', [
          ['a', 'changed'],
          ['c', 'hc'],
          ['b', null],
        ]);
        await store.discardStage({ runId: 'run2' });
        await store.discardStage({ runId: 'never-staged' });
        await store.commitSnapshot({ mapping: 'm', runId: 'run2' });
        expect(await snapshot('m')).toEqual({ a: 'ha', b: 'hb' });
      });

      it('keeps runs and mappings apart and resets one', async () => {
        await syncAll('m1', 'run1', { a: '1', b: '1' });
        await syncAll('m2', 'run2', { a: '2' });
        await outcomes('run3', [['a', 'x']]);
        await outcomes('run4', [['b', 'y']]);
        await store.commitSnapshot({ mapping: 'm1', runId: 'run4' });
        expect(await snapshot('m1')).toEqual({ a: '1', b: 'y' });
        expect(await snapshot('m2')).toEqual({ a: '2' });
        await store.discardStage({ runId: 'run3' });
        await store.resetSnapshot('m1');
        expect(await store.snapshotSize('m1')).toBe(0);
        expect(await snapshot('m2')).toEqual({ a: '2' });
      });

      it('commits thousands of outcomes given in any order', async () => {
        const all = keys(5000);
        const shuffled = [...all].sort((x, y) =>
          x.split('').reverse().join('') < y.split('').reverse().join('') ? -1 : 1,
        );
        for (let i = 0; i < shuffled.length; i += 700)
          await outcomes(
            'run1',
            shuffled.slice(i, i + 700).map((k) => [k, `v-${k}`]),
          );
        await store.commitSnapshot({ mapping: 'big', runId: 'run1' });
        expect(await store.snapshotSize('big')).toBe(5000);
        const seen: string[] = [];
        for await (const page of store.snapshotPages({ mapping: 'big', pageSize: 1000 }))
          for (const [k, h] of page) {
            seen.push(k);
            expect(h).toBe(`v-${k}`);
          }
        expect(seen).toEqual(all);
      });
    });

    describe('pending failed records', () => {
      const failure = (
        key: string,
        over: Partial<{ hash: string | null; at: string; code: string; expired: boolean }> = {},
      ) => ({
        key,
        change: 'updated' as const,
        hash: over.hash === undefined ? 'h1' : over.hash,
        lastFailedAt: over.at ?? '2024-05-01T10:00:00.000Z',
        code: over.code ?? 'check_violation',
        message: `failed ${key}`,
        expired: over.expired ?? false,
      });

      it('records a failure, counts attempts and restarts the window when the content changes', async () => {
        await store.upsertPending('m', [failure('a'), failure('b', { hash: null })]);
        let got = await store.getPending('m', ['a', 'b', 'zzz']);
        expect([...got.keys()].sort()).toEqual(['a', 'b']);
        expect(got.get('a')).toEqual({
          key: 'a',
          change: 'updated',
          hash: 'h1',
          firstFailedAt: '2024-05-01T10:00:00.000Z',
          lastFailedAt: '2024-05-01T10:00:00.000Z',
          attempts: 1,
          code: 'check_violation',
          message: 'failed a',
          expired: false,
        });
        expect(got.get('b')?.hash).toBeNull();

        // The same content fails again: one more attempt, same window.
        await store.upsertPending('m', [
          failure('a', { at: '2024-05-02T10:00:00.000Z', code: 'unique_violation' }),
        ]);
        got = await store.getPending('m', ['a']);
        expect(got.get('a')).toMatchObject({
          firstFailedAt: '2024-05-01T10:00:00.000Z',
          lastFailedAt: '2024-05-02T10:00:00.000Z',
          attempts: 2,
          code: 'unique_violation',
        });

        // Changed content: a new failure, its window restarts.
        await store.upsertPending('m', [failure('a', { hash: 'h2', at: '2024-05-03T10:00:00.000Z' })]);
        expect((await store.getPending('m', ['a'])).get('a')).toMatchObject({
          hash: 'h2',
          firstFailedAt: '2024-05-03T10:00:00.000Z',
          attempts: 1,
        });

        // Expiry is recorded.
        await store.upsertPending('m', [
          failure('a', { hash: 'h2', at: '2024-05-20T10:00:00.000Z', expired: true }),
        ]);
        expect((await store.getPending('m', ['a'])).get('a')).toMatchObject({
          expired: true,
          firstFailedAt: '2024-05-03T10:00:00.000Z',
        });
      });

      it('lists the pending keys of one mapping in key order', async () => {
        await store.upsertPending('m', [failure('b'), failure('a', { hash: null }), failure('c')]);
        await store.upsertPending('other', [failure('z')]);
        expect(await store.pendingKeys('m')).toEqual(['a', 'b', 'c']);
        expect(await store.pendingKeys('none')).toEqual([]);
      });

      it('clears and counts per mapping', async () => {
        await store.upsertPending(
          'm',
          keys(30).map((k) => failure(k)),
        );
        await store.upsertPending('other', [failure('k00000')]);
        expect(await store.countPending('m')).toBe(30);
        await store.clearPending('m', ['k00000', 'k00001', 'missing']);
        await store.clearPending('m', []);
        expect(await store.countPending('m')).toBe(28);
        expect(await store.countPending('other')).toBe(1);
        expect((await store.getPending('m', ['k00000', 'k00002'])).size).toBe(1);
        expect((await store.getPending('m', [])).size).toBe(0);
        // Many keys in one call.
        expect((await store.getPending('m', keys(30))).size).toBe(28);
      });
    });

    describe('raw SQL for features', () => {
      it('runs statements, reads rows and rolls a failed transaction back', async () => {
        expect(store.sql.dialect).toBe(store.kind);
        await store.sql.run('CREATE TABLE contract_feature (id integer PRIMARY KEY, name text NOT NULL)');
        expect(
          await store.sql.run('INSERT INTO contract_feature (id, name) VALUES (?, ?), (?, ?)', [
            1,
            "O'Reilly",
            2,
            'b',
          ]),
        ).toEqual({
          changes: 2,
        });
        await expect(
          store.sql.transaction(async (tx) => {
            await tx.run('INSERT INTO contract_feature (id, name) VALUES (?, ?)', [3, 'c']);
            await tx.run('INSERT INTO contract_feature (id, name) VALUES (?, ?)', [1, 'duplicate']);
          }),
        ).rejects.toThrow();
        const committed = await store.sql.transaction(async (tx) => {
          await tx.run('UPDATE contract_feature SET name = ? WHERE id = ?', ['b2', 2]);
          return tx.all<{ n: number }>('SELECT count(*) AS n FROM contract_feature');
        });
        expect(Number(committed[0]?.n)).toBe(2);
        expect(await store.sql.all('SELECT id, name FROM contract_feature ORDER BY id')).toEqual([
          { id: 1, name: "O'Reilly" },
          { id: 2, name: 'b2' },
        ]);
      });
    });

    describe('meta', () => {
      it('sets, replaces and removes facts', async () => {
        expect(await store.getMeta('reset:m')).toBeUndefined();
        await store.setMeta('reset:m', '2024-05-01T00:00:00.000Z');
        await store.setMeta('reset:m', 'again');
        await store.setMeta('other', "O'Reilly 🎉");
        expect(await store.getMeta('reset:m')).toBe('again');
        expect(await store.getMeta('other')).toBe("O'Reilly 🎉");
        await store.setMeta('reset:m', null);
        await store.setMeta('never-set', null);
        expect(await store.getMeta('reset:m')).toBeUndefined();
      });
    });
  });
}
