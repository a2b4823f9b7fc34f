/**
 * Nothing is lost when a flush is killed mid-batch: a child process flushes into MariaDB, is
 * SIGKILLed while a query runs, and a second process resumes. Every profile lands, the interrupted
 * batch runs again (at-least-once), and with the seed's idempotent add query each profile is in
 * the table exactly once. Runs with both runtime stores.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueProfiles, queueDepth, segmentStats } from '../../engine/segments/index.js';
import type { FlushReport } from '../../engine/segments/types.js';
import { openStore } from '../../engine/store/index.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { type StoreKind, testStoreUrl, Workspace } from './segments-fixture.js';

const root = join(import.meta.dirname, '..', '..');
const PROFILES = 500;
const SIZE = 50;

const config = `
connectors:
  crm: { type: mysql, url: "\${env:SEG_DB_URL}" }
segments:
  vip: { id: 1001, name: VIP, key: CustomID, members: managed }
segment_integrations:
  out:
    connector: crm
    segments: [vip]
    batch: { size: ${SIZE}, timeout: 1s }
    queries:
      # Each delivery is logged first; the sleep leaves time to kill the process mid-batch.
      add: |
        INSERT INTO deliveries (clientId) VALUES
        {for $index, $lead = $batch}("{$lead.CustomID}"){autocomma}{end};
        DO SLEEP(0.2);
        INSERT INTO mysegment (segId, clientId, updated) VALUES
        {for $index, $lead = $batch}({segment_id}, "{$lead.CustomID}", NOW()){autocomma}{end}
        ON DUPLICATE KEY UPDATE updated = NOW();
      remove: DELETE FROM mysegment WHERE segId = {segment_id} AND clientId IN ({batch_in "CustomID"})
`;

function child(env: NodeJS.ProcessEnv): { proc: ChildProcess; lines: Promise<unknown[]> } {
  const proc = spawn(
    process.execPath,
    [
      join(root, 'node_modules/vite-node/vite-node.mjs'),
      '--root',
      root,
      join(import.meta.dirname, 'segments-flush-child.ts'),
    ],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    err += d;
  });
  const lines = new Promise<unknown[]>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`flush child exited ${code}: ${err}`));
      else
        resolve(
          out
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l)),
        );
    });
  });
  return { proc, lines };
}

const kinds: StoreKind[] = serverUrl('postgres') ? ['sqlite', 'postgres'] : ['sqlite'];

describe.skipIf(!serverUrl('mariadb')).each(kinds)('a flush killed mid-batch, %s store', (kind) => {
  let ws: Workspace;
  let store: RuntimeStore;
  let conn: mysql.Connection;
  let env: NodeJS.ProcessEnv;
  const ids = Array.from({ length: PROFILES }, (_, i) => `c-${String(i).padStart(4, '0')}`);
  const count = async (sql: string) => Number((await conn.query<mysql.RowDataPacket[]>(sql))[0][0]!.n);
  const count2 = async (sql: string) => Number((await store.sql.all<{ n: unknown }>(sql))[0]!.n);

  beforeAll(async () => {
    const url = await freshDatabase('mariadb', 'seg_kill');
    conn = await mysql.createConnection({ uri: url });
    await conn.query(`CREATE TABLE mysegment (segId INT NOT NULL, clientId VARCHAR(64) NOT NULL, updated DATETIME,
                        PRIMARY KEY (segId, clientId))`);
    await conn.query(
      'CREATE TABLE deliveries (n INT AUTO_INCREMENT PRIMARY KEY, clientId VARCHAR(64) NOT NULL)',
    );
    ws = await Workspace.create();
    const storeUrl = await testStoreUrl(kind);
    store = await openStore({ url: storeUrl, configDir: ws.dir });
    env = { SEG_DB_URL: url, SEG_CHILD_DIR: ws.dir, SEG_CHILD_STORE: storeUrl };
    const { state } = await ws.apply(config, store);
    await enqueueProfiles({
      store,
      state,
      segment: 'vip',
      kind: 'add',
      profiles: ids.map((CustomID) => ({ CustomID })),
    });
  });
  afterAll(async () => {
    await conn?.end();
    await store?.close();
  });

  it('resumes the interrupted batch on restart and delivers every profile', async () => {
    const first = child(env);
    // Kill once the third batch has logged its deliveries and sleeps before its insert.
    const deadline = Date.now() + 60_000;
    while ((await count('SELECT count(*) AS n FROM deliveries')) < 3 * SIZE) {
      if (Date.now() > deadline || first.proc.exitCode !== null)
        throw new Error('the flush never reached its third batch');
      await new Promise((r) => setTimeout(r, 5));
    }
    first.proc.kill('SIGKILL');
    await first.lines;

    // The store knows which batches were delivered and which were formed but not recorded as
    // delivered (the one killed mid-query, and maybe the one before it, whose delivery is recorded
    // while the next query runs, or a next one formed ahead). Delivered batches are marked, and
    // moved out of the queue (their query logged) a few dozen at a time: the kill left them marked.
    const done = (await segmentStats({ store, integration: 'out', since: new Date(0) })).by_kind.add?.ok ?? 0;
    const marked = await count2('SELECT count(*) AS n FROM segment_batches WHERE delivered IS NOT NULL');
    const logged = await count2("SELECT count(*) AS n FROM segment_queries WHERE ok = 1 AND kind = 'add'");
    expect(marked + logged).toBe(done);
    expect(marked).toBeGreaterThanOrEqual(1);
    const inFlight = await store.sql.all<{ started_at: string | null; events: unknown }>(
      'SELECT started_at, events FROM segment_batches WHERE delivered IS NULL ORDER BY id',
    );
    expect(done).toBeGreaterThanOrEqual(1);
    expect(inFlight.length).toBeGreaterThanOrEqual(1);
    expect(inFlight.every((b) => b.started_at !== null && Number(b.events) === SIZE)).toBe(true);
    expect((await queueDepth({ store }))[0]).toMatchObject({
      profiles: PROFILES - done * SIZE,
      in_flight: inFlight.length * SIZE,
    });
    expect(await count('SELECT count(*) AS n FROM deliveries')).toBeGreaterThanOrEqual(3 * SIZE);

    const second = child(env);
    const lines = await second.lines;
    const report = (lines.at(-1) as { report: FlushReport }).report;
    expect(report.failed).toBe(0);
    expect(report.batches[0]).toMatchObject({ kind: 'add', profiles: SIZE, status: 'ok', resumed: true });
    expect(report.batches.filter((b) => b.resumed)).toHaveLength(inFlight.length);
    expect(report.profiles).toBe(PROFILES - done * SIZE);

    // Every profile is in the table exactly once. Only batches whose query had started before the
    // kill and whose delivery was not recorded were delivered twice: at-least-once, never lost.
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT clientId FROM mysegment ORDER BY clientId',
    );
    expect(rows.map((r) => r.clientId)).toEqual(ids);
    const [twice] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT clientId FROM deliveries GROUP BY clientId HAVING count(*) > 1 ORDER BY clientId',
    );
    expect(twice.length % SIZE).toBe(0);
    expect(twice.length).toBeGreaterThanOrEqual(SIZE);
    expect(twice.length).toBeLessThanOrEqual(inFlight.length * SIZE);
    expect(twice.map((r) => r.clientId)).toEqual(ids.slice(done * SIZE, done * SIZE + twice.length));
    expect(await count('SELECT count(DISTINCT clientId) AS n FROM deliveries')).toBe(PROFILES);
    expect(await queueDepth({ store })).toEqual([]);
    // Everything left the store's queue; every query is in the log once.
    expect(await count2('SELECT count(*) AS n FROM segment_batches')).toBe(0);
    expect(await count2('SELECT count(*) AS n FROM segment_events')).toBe(0);
    expect(await count2("SELECT count(*) AS n FROM segment_queries WHERE ok = 1 AND kind = 'add'")).toBe(
      done + report.queries,
    );
  });
});
