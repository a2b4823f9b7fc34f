// The postgres state backend on a real server: round trips, history, the advisory lock between two
// backends (as two processes would hold it), force-unlock of live and stale holders, corrupt rows.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockHeldError, UserError } from '../../engine/errors.js';
import { openStateBackend } from '../../engine/state/index.js';
import { PostgresStateBackend } from '../../engine/state/postgres.js';
import { STATE_VERSION, type StateDocument } from '../../engine/state/types.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';

const base = serverUrl('postgres');

function doc(serial: number, lineage = 'lin-1'): StateDocument {
  return {
    version: STATE_VERSION,
    serial,
    lineage,
    applied_at: '2024-01-01T00:00:00.000Z',
    resources: [
      {
        address: 'source.wh',
        kind: 'source',
        name: 'wh',
        body: {
          type: 'postgres',
          url: '${env:WH_URL}',
          nested: { big: '9007199254740993', list: [1, 'ü', null] },
        },
      },
    ],
    pending_effects: [],
  };
}

async function thrown(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe.skipIf(!base)('postgres state backend', () => {
  let url: string;
  let admin: pg.Client;
  const opened: PostgresStateBackend[] = [];
  const open = async (table = 'backflow_state') => {
    const b = await PostgresStateBackend.open({ url, table });
    opened.push(b);
    return b;
  };

  beforeAll(async () => {
    url = await freshDatabase('postgres', 'state_pg');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => {
    for (const b of opened) await b.close().catch(() => undefined);
    await admin?.end();
  });

  it('starts empty, then reads back what was written', async () => {
    const b = await open('round_trip');
    expect(await b.read()).toBeNull();
    expect(await b.currentLock()).toBeNull();
    const lock = await b.lock({ operation: 'apply', who: 'alice@ci' });
    await b.write(doc(1), lock);
    await b.write(doc(2), lock);
    await lock.release();
    expect(await b.read()).toEqual(doc(2));
    const other = await open('round_trip');
    expect(await other.read()).toEqual(doc(2));
    const rows = await admin.query('SELECT serial, lineage, written_by FROM round_trip ORDER BY id');
    expect(rows.rows).toEqual([
      { serial: '1', lineage: 'lin-1', written_by: 'alice@ci' },
      { serial: '2', lineage: 'lin-1', written_by: 'alice@ci' },
    ]);
  });

  it('a second lock fails at once, naming the holder', async () => {
    const one = await open('contended');
    const two = await open('contended');
    const held = await one.lock({ operation: 'apply', who: 'alice@laptop (pid 1)' });
    const started = Date.now();
    const e = await thrown(two.lock({ operation: 'apply', who: 'bob@ci' }));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(e).toBeInstanceOf(LockHeldError);
    const err = e as LockHeldError;
    expect(err.lock).toEqual(held.info);
    expect(err.message).toContain('alice@laptop (pid 1) (apply) since');
    expect(err.message).toContain(held.info.id);
    expect(err.hint).toContain(`backflow state unlock ${held.info.id}`);
    expect(await two.currentLock()).toEqual(held.info);
    await held.release();
    expect(await two.currentLock()).toBeNull();
    const next = await two.lock({ operation: 'apply' });
    await next.release();
  });

  it('refuses a write with a released lock', async () => {
    const b = await open('released');
    const lock = await b.lock({ operation: 'apply' });
    await lock.release();
    const e = await thrown(b.write(doc(1), lock));
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/lock .* was lost before writing/);
    expect(await b.read()).toBeNull();
  });

  it('force-unlocks a live holder: its backend is ended and its next write fails', async () => {
    const holder = await open('hung');
    const rescuer = await open('hung');
    const lock = await holder.lock({ operation: 'apply', who: 'stuck-ci' });
    await holder.write(doc(1), lock);

    const mismatch = await thrown(rescuer.forceUnlock('not-the-id'));
    expect(mismatch).toBeInstanceOf(UserError);
    expect((mismatch as Error).message).toContain(`does not match the current lock ${lock.info.id}`);
    expect((mismatch as UserError).hint).toContain('stuck-ci');

    await rescuer.forceUnlock(lock.info.id);
    expect(await rescuer.currentLock()).toBeNull();
    const mine = await rescuer.lock({ operation: 'apply', who: 'rescuer' });
    const e = await thrown(holder.write(doc(99), lock));
    expect((e as Error).message).toMatch(/was lost before writing/);
    await rescuer.write(doc(2), mine);
    await mine.release();
    await lock.release(); // the old holder's release is harmless
    expect((await rescuer.read())?.serial).toBe(2);
  });

  it('ignores the info row of a holder that died, and clears it on force-unlock', async () => {
    const b = await open('stale');
    const lock = await b.lock({ operation: 'apply', who: 'crashed' });
    // The holder's connection dies without releasing (a killed process): the server drops the lock.
    await admin.query('SELECT pg_terminate_backend(backend_pid) FROM stale_lock WHERE id = $1', [
      lock.info.id,
    ]);
    for (let i = 0; i < 50 && (await b.currentLock()) !== null; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(await b.currentLock()).toBeNull();
    // Its info row is still there, stale; force-unlock by its id clears it without ending anyone.
    expect((await admin.query('SELECT id FROM stale_lock')).rows).toEqual([{ id: lock.info.id }]);
    await b.forceUnlock(lock.info.id);
    expect((await admin.query('SELECT count(*)::int AS n FROM stale_lock')).rows[0]).toEqual({ n: 0 });
    await expect(b.forceUnlock('anything')).rejects.toThrow(/is not locked/);
    const again = await (await open('stale')).lock({ operation: 'apply', who: 'next' });
    await again.release();
  });

  it('refuses a corrupt or unknown state rather than guessing', async () => {
    const b = await open('corrupt');
    await admin.query(
      `INSERT INTO corrupt (lineage, serial, doc, written_by, lock_id) VALUES ('x', 1, '{"hello": 1}', 'me', 'l')`,
    );
    const e1 = await thrown(b.read());
    expect(e1).toBeInstanceOf(UserError);
    expect((e1 as Error).message).toMatch(/is not a backflow state file/);
    await admin.query(
      `INSERT INTO corrupt (lineage, serial, doc, written_by, lock_id)
       VALUES ('x', 2, '{"version": 99, "serial": 2, "lineage": "x", "resources": []}', 'me', 'l')`,
    );
    expect(await thrown(b.read())).toMatchObject({ message: expect.stringContaining('has version 99') });
    await admin.query(
      `INSERT INTO corrupt (lineage, serial, doc, written_by, lock_id) VALUES ('x', 3, '{"version": 1}', 'me', 'l')`,
    );
    expect(await thrown(b.read())).toMatchObject({
      message: expect.stringContaining('serial, lineage or resources missing'),
    });
  });

  it('keeps a bounded history', async () => {
    const b = await open('history');
    const lock = await b.lock({ operation: 'apply' });
    for (let i = 1; i <= 105; i++) await b.write(doc(i), lock);
    await lock.release();
    const rows = await admin.query(
      'SELECT min(serial)::int AS lo, max(serial)::int AS hi, count(*)::int AS n FROM history',
    );
    expect(rows.rows[0]).toEqual({ lo: 6, hi: 105, n: 100 });
    expect((await b.read())?.serial).toBe(105);
  });

  it('is what settings.state.backend postgres opens', async () => {
    const b = await openStateBackend('/nonexistent', {
      state: { backend: 'postgres', url, table: 'via_settings' },
    } as never);
    try {
      expect(b.description).toMatch(/^postgres state table "via_settings" at 127\.0\.0\.1:\d+\//);
      expect(await b.read()).toBeNull();
    } finally {
      await b.close();
    }
  });

  it('fails to open with a connection error naming the server', async () => {
    const u = new URL(url);
    u.pathname = '/no_such_db';
    await expect(PostgresStateBackend.open({ url: u.toString(), table: 't' })).rejects.toMatchObject({
      code: 'connection_failed',
      message: expect.stringContaining('database "no_such_db" does not exist'),
    });
  });
});
