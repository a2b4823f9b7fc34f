// Leases on both runtime stores, against the real databases: one holder at a time, takeover
// after expiry (by the database clock), compare-and-swap under contention, dead local holders,
// and work aborted when its lease is lost.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { currentHolder, type Holder, holderIsDead, Leases } from '../../engine/agent/leases.js';
import { withMappingLease } from '../../engine/agent/recovery.js';
import { openStore } from '../../engine/store/index.js';
import { openPostgresStore } from '../../engine/store/postgres.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';

/** A holder on another machine: only expiry frees its leases. */
const remote = (n: number): Holder => ({
  id: `host-${n}/1/${1000 + n}/abcd${n}`,
  host: `host-${n}`,
  pidns: '1',
  pid: 1000 + n,
});

const stores: Record<string, () => Promise<RuntimeStore>> = {
  sqlite: () => openStore({ url: 'sqlite::memory:', configDir: '/' }),
  ...(serverUrl('postgres')
    ? { postgres: async () => openPostgresStore({ url: await freshDatabase('postgres', 'agent_leases') }) }
    : {}),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const [kind, open] of Object.entries(stores)) {
  describe(`leases on the ${kind} store`, () => {
    it('has one holder at a time and lets another take over once it expired', async () => {
      const store = await open();
      try {
        const a = new Leases(store.sql, remote(1), 400);
        const b = new Leases(store.sql, remote(2), 400);
        expect(await a.acquire('mapping:m')).toEqual({ ok: true, previous: undefined });
        const refused = await b.acquire('mapping:m');
        expect(refused).toMatchObject({ ok: false, heldBy: { holder: remote(1).id, expired: false } });
        expect(await a.renew('mapping:m', 'run_1')).toBe(true);
        expect((await a.get('mapping:m'))?.runId).toBe('run_1');
        await sleep(600);
        const taken = await b.acquire('mapping:m');
        expect(taken).toMatchObject({ ok: true, previous: { holder: remote(1).id, expired: true } });
        expect(await a.renew('mapping:m')).toBe(false); // lost: the old holder learns it
        await a.release('mapping:m'); // releasing what is not ours is a no-op
        expect((await b.get('mapping:m'))?.holder).toBe(remote(2).id);
        await b.release('mapping:m');
        expect(await b.get('mapping:m')).toBeUndefined();
      } finally {
        await store.close();
      }
    });

    it('gives a free or expired lease to exactly one of many contenders', async () => {
      const store = await open();
      try {
        const contenders = Array.from({ length: 6 }, (_, i) => new Leases(store.sql, remote(i + 10), 300));
        const first = await Promise.all(contenders.map((l) => l.acquire('integration:x')));
        expect(first.filter((r) => r.ok)).toHaveLength(1);
        await sleep(450);
        const second = await Promise.all(contenders.map((l) => l.acquire('integration:x')));
        expect(second.filter((r) => r.ok)).toHaveLength(1);
      } finally {
        await store.close();
      }
    });

    it('frees at once a lease whose holder was a process here that no longer exists', async () => {
      const store = await open();
      try {
        const me = currentHolder();
        const child = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
        const gone: Holder = {
          ...me,
          id: `${me.host}/${me.pidns ?? '-'}/${child.pid}/dead0000`,
          pid: child.pid!,
        };
        if (me.pidns) expect(holderIsDead(gone.id, me)).toBe(true);
        expect(holderIsDead(remote(1).id, me)).toBe(false);
        expect(holderIsDead(`${me.host}/${me.pidns}/${process.pid}/other`, me)).toBe(false);
        const dead = new Leases(store.sql, gone, 60_000);
        expect((await dead.acquire('mapping:m')).ok).toBe(true);
        const live = new Leases(store.sql, me, 60_000);
        expect((await live.acquire('mapping:m')).ok).toBe(me.pidns !== undefined);
      } finally {
        await store.close();
      }
    });

    it('aborts the work when its lease is taken, and refuses a second local taker', async () => {
      const store = await open();
      try {
        const a = new Leases(store.sql, remote(1), 300);
        const lost: string[] = [];
        const outcome = await a.withLease(
          'mapping:m',
          async ({ signal }) => {
            expect(await a.withLease('mapping:m', async () => 'inner')).toEqual({
              ran: false,
              heldBy: 'this agent',
            });
            // Another agent takes the row over (as if ours had expired while we stalled).
            await store.sql.run('UPDATE agent_leases SET holder = ? WHERE name = ?', [
              remote(9).id,
              'mapping:m',
            ]);
            await new Promise<void>((resolve) =>
              signal.addEventListener('abort', () => resolve(), { once: true }),
            );
            return signal.aborted;
          },
          { onLost: (r) => lost.push(r) },
        );
        expect(outcome).toEqual({ ran: true, value: true });
        expect(lost[0]).toMatch(/taken over/);
        expect((await a.get('mapping:m'))?.holder).toBe(remote(9).id); // not released: it is not ours
        expect(a.holds('mapping:m')).toBe(false);
      } finally {
        await store.close();
      }
    });

    it('renews while the work runs longer than the lease', async () => {
      const store = await open();
      try {
        const a = new Leases(store.sql, remote(1), 300);
        const b = new Leases(store.sql, remote(2), 300);
        const outcome = await a.withLease('mapping:m', async ({ signal }) => {
          await sleep(1000);
          return { aborted: signal.aborted, other: await b.acquire('mapping:m') };
        });
        expect(outcome).toMatchObject({ ran: true, value: { aborted: false, other: { ok: false } } });
        expect(await a.get('mapping:m')).toBeUndefined(); // released after the work
      } finally {
        await store.close();
      }
    });
  });
}

describe('withMappingLease (for `backflow sync` next to agents)', () => {
  it('runs holding the mapping lease and refuses while another holds it, naming the holder', async () => {
    const store = await openStore({ url: 'sqlite::memory:', configDir: '/' });
    try {
      const inner = await withMappingLease(
        { store, mapping: 'm' },
        async () => (await new Leases(store.sql, remote(1), 1000).acquire('mapping:m')).ok,
      );
      expect(inner).toBe(false); // held while the work ran
      await new Leases(store.sql, remote(2), 60_000).acquire('mapping:m');
      await expect(withMappingLease({ store, mapping: 'm' }, async () => 'ran')).rejects.toThrow(
        `mapping m is being synced by ${remote(2).id}`,
      );
    } finally {
      await store.close();
    }
  });
});
