/**
 * Segment integrations end to end on real servers: events queued in the runtime store, flushed
 * through the connector's session, read back byte for byte. The seed's five queries run unchanged
 * from examples/segments-mysql against MariaDB; the hostile corpus goes through SQLite,
 * PostgreSQL, MariaDB and ClickHouse integrations.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import BetterSqlite3 from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueClear, enqueueProfiles, flushDue, queueDepth } from '../../engine/segments/index.js';
import type { StateDocument } from '../../engine/state/types.js';
import type { RuntimeStore } from '../../engine/store/types.js';
import { HOSTILE, HOSTILE_NAMES, type HostileName } from '../fixtures/hostile-values.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';
import { testStore, Workspace } from './segments-fixture.js';

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex').toUpperCase();
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const example = join(import.meta.dirname, '../../examples/segments-mysql');

describe.skipIf(!serverUrl('mariadb'))('examples/segments-mysql through the queue on MariaDB', () => {
  let ws: Workspace;
  let store: RuntimeStore;
  let conn: mysql.Connection;
  let env: NodeJS.ProcessEnv;
  let state: StateDocument;
  const yaml = () => readFile(join(example, 'backflow.yaml'), 'utf8');
  // clientId is VARCHAR(255): every hostile value but the 100,000-character one.
  const ids = HOSTILE_NAMES.filter((n) => n !== 'long').map((n) => HOSTILE[n]);
  const flush = () => flushDue({ store, state, configDir: ws.dir, env, all: true });
  const members = async () => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT segId, segment_id, clientId, HEX(clientId) AS h FROM mysegment',
    );
    return rows.map((r) => [r.segId, r.segment_id, r.clientId, r.h]).sort((a, b) => byBytes(a[2], b[2]));
  };
  const expected = (list: readonly string[]) =>
    [...list].sort(byBytes).map((id) => [1001, 1001, id, hex(id)]);
  const segmentsTable = async () =>
    (await conn.query<mysql.RowDataPacket[]>('SELECT segment_id, name, HEX(name) AS h FROM segments'))[0].map(
      (r) => [r.segment_id, r.name, r.h],
    );

  beforeAll(async () => {
    const url = await freshDatabase('mariadb', 'seg_example');
    env = { ...process.env, CRM_MYSQL_URL: url };
    conn = await mysql.createConnection({ uri: url, multipleStatements: true, charset: 'utf8mb4' });
    await conn.query(await readFile(join(example, 'schema.sql'), 'utf8'));
    ws = await Workspace.create();
    store = await testStore('sqlite', ws.dir);
  });
  afterAll(async () => {
    await conn?.end();
    await store?.close();
  });

  it('upsert_segment runs on apply', async () => {
    const applied = await ws.apply(await yaml(), store);
    state = applied.state;
    expect(applied.effects.map((e) => e.effect)).toEqual([
      { kind: 'upsert_segment', segment: 'vip_customers', integration: 'export_vips' },
    ]);
    expect((await flush()).batches.map((b) => [b.kind, b.status])).toEqual([['upsert_segment', 'ok']]);
    expect(await segmentsTable()).toEqual([[1001, 'VIP customers', hex('VIP customers')]]);
  });

  it('add inserts hostile ids exactly, and again only refreshes them', async () => {
    const profiles = ids.map((CustomID) => ({ CustomID }));
    await enqueueProfiles({ store, state, segment: 'vip_customers', kind: 'add', profiles });
    await enqueueProfiles({ store, state, segment: 'vip_customers', kind: 'add', profiles });
    const r = await flush();
    expect(r.batches.map((b) => [b.kind, b.profiles, b.status])).toEqual([['add', ids.length * 2, 'ok']]);
    expect(await members()).toEqual(expected(ids));
  });

  it('remove deletes exactly the batch (batch_in)', async () => {
    const [gone, kept] = [ids.slice(0, 6), ids.slice(6)];
    await enqueueProfiles({
      store,
      state,
      segment: 'vip_customers',
      kind: 'remove',
      profiles: gone.map((CustomID) => ({ CustomID })),
    });
    expect((await flush()).batches.map((b) => [b.kind, b.profiles, b.status])).toEqual([['remove', 6, 'ok']]);
    expect(await members()).toEqual(expected(kept));
  });

  it('clear empties the segment', async () => {
    await enqueueClear({ store, state, segment: 'vip_customers' });
    expect((await flush()).batches.map((b) => [b.kind, b.status])).toEqual([['clear', 'ok']]);
    expect(await members()).toEqual([]);
  });

  it('a rename runs upsert_segment with the new name, exactly', async () => {
    const name = `VIP "gold" \\'; DROP TABLE segments; -- 🎉`;
    const text = (await yaml()).replace('name: VIP customers', `name: ${JSON.stringify(name)}`);
    state = (await ws.apply(text, store)).state;
    expect((await flush()).batches.map((b) => [b.kind, b.status])).toEqual([['upsert_segment', 'ok']]);
    expect(await segmentsTable()).toEqual([[1001, name, hex(name)]]);
  });

  it('a deleted segment runs delete_segment', async () => {
    // The segment goes; the integration covers another one instead.
    const text = (await yaml())
      .replace('segments: [vip_customers]', 'segments: [others]')
      .replace(
        /\nsegments:\n[\s\S]*?\n\n/,
        '\nsegments:\n  others: { id: 1002, name: Others, key: CustomID, members: managed }\n\n',
      );
    expect(text).not.toContain('vip_customers:');
    const applied = await ws.apply(text, store);
    state = applied.state;
    expect(applied.effects.map((e) => e.effect)).toContainEqual({
      kind: 'delete_segment',
      segment: 'vip_customers',
      integration: 'export_vips',
    });
    const r = await flush();
    expect(r.batches.map((b) => [b.segment, b.kind, b.status])).toEqual([
      ['others', 'upsert_segment', 'ok'],
      ['vip_customers', 'delete_segment', 'ok'],
    ]);
    expect(await segmentsTable()).toEqual([[1002, 'Others', hex('Others')]]);
    expect(await queueDepth({ store })).toEqual([]);
  });
});

/** A database behind a connector: its config, its table, and how to read the table back. */
interface Target {
  readonly connector: string;
  readonly add: string;
  readonly remove: string;
  readonly names: readonly HostileName[];
  setUp(ws: Workspace): Promise<NodeJS.ProcessEnv>;
  read(): Promise<{ k: string; values: string[]; hexes: string[] }[]>;
  close(): Promise<void>;
}

const everyQuoting = (quotes: string) =>
  `INSERT INTO t (k, a, b${quotes ? ', c' : ''}) VALUES
{for $index, $lead = $batch}
  ('{$lead.k}', {$lead.v}, '{$lead.v}'${quotes ? ', "{$lead.v}"' : ''}){autocomma}
{end}`;

function sqliteTarget(): Target {
  let db: BetterSqlite3.Database;
  return {
    connector: '{ type: sqlite, path: hostile.db }',
    add: everyQuoting(''),
    remove: 'DELETE FROM t WHERE a IN ({batch_in "v"})',
    names: HOSTILE_NAMES.filter((n) => n !== 'nul'),
    async setUp(ws) {
      db = new BetterSqlite3(ws.path('hostile.db'));
      db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, a TEXT, b TEXT)');
      return {};
    },
    async read() {
      const rows = db.prepare('SELECT k, a, b, hex(a) AS ha, hex(b) AS hb FROM t').all() as Record<
        string,
        string
      >[];
      return rows.map((r) => ({ k: r.k!, values: [r.a!, r.b!], hexes: [r.ha!, r.hb!] }));
    },
    async close() {
      db?.close();
    },
  };
}

function postgresTarget(): Target {
  let client: pg.Client;
  return {
    connector: '{ type: postgres, url: "${env:SEG_DB_URL}" }',
    add: everyQuoting(''),
    remove: 'DELETE FROM t WHERE a IN ({batch_in "v"})',
    names: HOSTILE_NAMES.filter((n) => n !== 'nul'),
    async setUp() {
      const url = await freshDatabase('postgres', 'seg_hostile');
      client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query('CREATE TABLE t (k text PRIMARY KEY, a text, b text)');
      return { SEG_DB_URL: url };
    },
    async read() {
      const { rows } = await client.query(
        `SELECT k, a, b, encode(convert_to(a, 'UTF8'), 'hex') AS ha, encode(convert_to(b, 'UTF8'), 'hex') AS hb FROM t`,
      );
      return rows.map((r) => ({ k: r.k, values: [r.a, r.b], hexes: [r.ha, r.hb] }));
    },
    async close() {
      await client?.end();
    },
  };
}

function mariadbTarget(): Target {
  let conn: mysql.Connection;
  return {
    connector: '{ type: mysql, url: "${env:SEG_DB_URL}" }',
    add: everyQuoting('"'),
    remove: 'DELETE FROM t WHERE a IN ({batch_in "v"})',
    names: HOSTILE_NAMES,
    async setUp() {
      const url = await freshDatabase('mariadb', 'seg_hostile');
      conn = await mysql.createConnection({ uri: url, charset: 'utf8mb4' });
      await conn.query(
        'CREATE TABLE t (k VARCHAR(64) PRIMARY KEY, a LONGTEXT, b LONGTEXT, c LONGTEXT) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin',
      );
      return { SEG_DB_URL: url };
    },
    async read() {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT k, a, b, c, HEX(a) AS ha, HEX(b) AS hb, HEX(c) AS hc FROM t',
      );
      return rows.map((r) => ({ k: r.k, values: [r.a, r.b, r.c], hexes: [r.ha, r.hb, r.hc] }));
    },
    async close() {
      await conn?.end();
    },
  };
}

function clickhouseTarget(): Target {
  let client: ReturnType<typeof createClient>;
  return {
    connector: '{ type: clickhouse, url: "${env:SEG_DB_URL}" }',
    add: everyQuoting(''),
    remove: 'ALTER TABLE t DELETE WHERE a IN ({batch_in "v"})',
    names: HOSTILE_NAMES,
    async setUp() {
      const url = new URL(await freshDatabase('clickhouse', 'seg_hostile'));
      client = createClient({ url: url.origin, database: url.pathname.slice(1) });
      await client.command({
        query: 'CREATE TABLE t (k String, a String, b String) ENGINE = MergeTree ORDER BY k',
      });
      return { SEG_DB_URL: `clickhouse://default@${url.host}${url.pathname}` };
    },
    async read() {
      // ALTER … DELETE is a mutation that finishes in the background: wait for it.
      for (let i = 0; i < 100; i++) {
        const rs = await client.query({
          query: 'SELECT count() AS n FROM system.mutations WHERE is_done = 0',
          format: 'JSONEachRow',
        });
        if (Number((await rs.json<{ n: string }>())[0]?.n ?? 0) === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const rs = await client.query({
        query: 'SELECT k, a, b, hex(a) AS ha, hex(b) AS hb FROM t',
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string>>();
      return rows.map((r) => ({ k: r.k!, values: [r.a!, r.b!], hexes: [r.ha!, r.hb!] }));
    },
    async close() {
      await client?.close();
    },
  };
}

const targets: [string, boolean, () => Target][] = [
  ['SQLite', true, sqliteTarget],
  ['PostgreSQL', !!serverUrl('postgres'), postgresTarget],
  ['MariaDB', !!serverUrl('mariadb'), mariadbTarget],
  ['ClickHouse', !!serverUrl('clickhouse'), clickhouseTarget],
];

describe.each(targets)('hostile values through an integration on %s', (_name, available, make) => {
  const target = make();
  let ws: Workspace;
  let store: RuntimeStore;
  let state: StateDocument;
  let env: NodeJS.ProcessEnv;
  const flush = () =>
    flushDue({ store, state, configDir: ws.dir, env: { ...process.env, ...env }, all: true });
  const profiles = (names: readonly HostileName[]) => names.map((k) => ({ k, v: HOSTILE[k] }));

  beforeAll(async () => {
    if (!available) return;
    ws = await Workspace.create();
    store = await testStore('sqlite', ws.dir);
    env = await target.setUp(ws);
    const indent = (q: string) => q.split('\n').join('\n        ');
    state = (
      await ws.apply(`
connectors:
  db: ${target.connector}
segments:
  hostile: { id: 5, name: hostile, key: k, members: managed, fields: [v] }
segment_integrations:
  h:
    connector: db
    segments: [hostile]
    batch: { size: 500, timeout: 1s }
    queries:
      add: |
        ${indent(target.add)}
      remove: |
        ${indent(target.remove)}
`)
    ).state;
  });
  afterAll(async () => {
    await target.close();
    await store?.close();
  });

  it.skipIf(!available)('stores every value exactly in every quoting, and removes by batch_in', async () => {
    await enqueueProfiles({
      store,
      state,
      segment: 'hostile',
      kind: 'add',
      profiles: profiles(target.names),
    });
    const added = await flush();
    expect(added.batches.map((b) => [b.kind, b.profiles, b.status, b.error])).toEqual([
      ['add', target.names.length, 'ok', undefined],
    ]);
    const check = async (names: readonly HostileName[]) => {
      const rows = (await target.read()).sort((a, b) => byBytes(a.k, b.k));
      expect(rows.map((r) => r.k)).toEqual([...names].sort(byBytes));
      for (const r of rows) {
        const want = HOSTILE[r.k as HostileName];
        expect({ k: r.k, values: r.values }).toEqual({ k: r.k, values: r.values.map(() => want) });
        expect({ k: r.k, hexes: r.hexes.map((h) => h.toUpperCase()) }).toEqual({
          k: r.k,
          hexes: r.hexes.map(() => hex(want)),
        });
      }
    };
    await check(target.names);
    const gone = target.names.filter((_, i) => i % 2 === 0);
    await enqueueProfiles({ store, state, segment: 'hostile', kind: 'remove', profiles: profiles(gone) });
    expect((await flush()).batches.map((b) => [b.kind, b.profiles, b.status, b.error])).toEqual([
      ['remove', gone.length, 'ok', undefined],
    ]);
    await check(target.names.filter((n) => !gone.includes(n)));
  });
});
