/**
 * Hostile values rendered through the template engine, executed on real PostgreSQL, MariaDB
 * and ClickHouse servers (started by test/harness/global-setup.ts), and read back byte for
 * byte. Each connection allows several statements per query where the driver can, so a value
 * that managed to add a statement would run it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ClickHouseClient, createClient } from '@clickhouse/client';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../../engine/errors.js';
import { type Profile, parseTemplate, renderTemplate } from '../../engine/segments/template.js';
import { dialect as clickhouseDialect } from '../../providers/clickhouse/dialect.js';
import { dialect as mysqlDialect } from '../../providers/mysql/dialect.js';
import { dialect as postgresDialect } from '../../providers/postgres/dialect.js';
import type { SqlDialect } from '../../providers/sql/dialect.js';
import { HOSTILE, HOSTILE_NAMES, type HostileName } from '../fixtures/hostile-values.js';
import type {} from '../harness/context.js';

const servers = inject('servers');

function renderer(dialect: SqlDialect) {
  return (text: string, batch: readonly Profile[], segment = { id: 1, name: 'seg' }): string => {
    const parsed = parseTemplate(text, dialect.name);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    return renderTemplate({ template: parsed.template, dialect, segment, batch });
  };
}

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex').toUpperCase();
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const profiles = (names: readonly HostileName[]) => names.map((name) => ({ name, v: HOSTILE[name] }));

interface StoredRow {
  readonly k: number;
  readonly name: HostileName;
  readonly values: readonly string[];
  readonly hexes: readonly string[];
}

/** Every row holds its hostile value, unchanged, in every column, in insertion order. */
function expectExact(rows: readonly StoredRow[], names: readonly HostileName[]): void {
  expect(rows.map((r) => r.name)).toEqual(names);
  for (const r of rows) {
    const want = HOSTILE[r.name];
    expect({ name: r.name, values: r.values }).toEqual({ name: r.name, values: r.values.map(() => want) });
    expect({ name: r.name, hexes: r.hexes.map((h) => h.toUpperCase()) }).toEqual({
      name: r.name,
      hexes: r.hexes.map(() => hex(want)),
    });
  }
}

describe.skipIf(!servers.postgres)('template round trip on PostgreSQL', () => {
  const render = renderer(postgresDialect);
  /** PostgreSQL text cannot hold NUL: the dialect refuses it (tested below). */
  const names = HOSTILE_NAMES.filter((n) => n !== 'nul');
  let client: pg.Client;

  beforeAll(async () => {
    client = new pg.Client({ connectionString: servers.postgres });
    await client.connect();
    await client.query('CREATE TEMP TABLE t (k int PRIMARY KEY, name text NOT NULL, a text, b text)');
  });
  afterAll(async () => {
    await client?.end();
  });

  it("stores every hostile value exactly, outside quotes and inside '…'", async () => {
    // The simple query protocol runs every statement in the text.
    await client.query(
      render(
        `INSERT INTO t (k, name, a, b) VALUES
{for $index, $lead = $batch}
  ({$index}, '{$lead.name}', {$lead.v}, '{$lead.v}'){autocomma}
{end};`,
        profiles(names),
      ),
    );
    const { rows } = await client.query<{
      k: number;
      name: HostileName;
      a: string;
      b: string;
      ha: string;
      hb: string;
    }>(
      `SELECT k, name, a, b, encode(convert_to(a, 'UTF8'), 'hex') AS ha, encode(convert_to(b, 'UTF8'), 'hex') AS hb
       FROM t ORDER BY k`,
    );
    expectExact(
      rows.map((r) => ({ k: r.k, name: r.name, values: [r.a, r.b], hexes: [r.ha, r.hb] })),
      names,
    );
    const count = render(
      'SELECT count(*)::int AS n FROM t WHERE a IN ({batch_in "v"}) AND b IN ({batch_in "v"})',
      profiles(names),
    );
    expect((await client.query(count)).rows).toEqual([{ n: names.length }]);
  });

  // Identifiers are cut at 63 bytes and cannot be empty, so only the short non-empty values.
  it.each(names.filter((n) => n !== 'long' && n !== 'empty'))(
    'keeps %s exactly inside a "…" identifier',
    async (name) => {
      const sql = render('{for $index, $lead = $batch}SELECT 1 AS "{$lead.v}"{end}', [{ v: HOSTILE[name] }]);
      const result = await client.query(sql);
      expect(result.fields.map((f) => f.name)).toEqual([HOSTILE[name]]);
    },
  );

  it('refuses a NUL before it reaches the server', () => {
    expect(() => render('{for $index, $lead = $batch}SELECT {$lead.v}{end}', [{ v: HOSTILE.nul }])).toThrow(
      UserError,
    );
  });
});

describe.skipIf(!servers.mariadb)('template round trip on MariaDB', () => {
  const render = renderer(mysqlDialect);
  const names = HOSTILE_NAMES;
  const database = uniqueName('backflow_template');
  let conn: mysql.Connection;

  beforeAll(async () => {
    conn = await mysql.createConnection({
      uri: servers.mariadb,
      multipleStatements: true,
      charset: 'utf8mb4',
    });
    await conn.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await conn.query(`USE ${database}`);
    // The default sql_mode has neither ANSI_QUOTES nor NO_BACKSLASH_ESCAPES: "…" is a string
    // literal and backslash escapes apply, which is what the mysql dialect writes.
    await conn.query(`SET SESSION sql_mode = 'STRICT_TRANS_TABLES'`);
  });
  afterAll(async () => {
    await conn?.query(`DROP DATABASE IF EXISTS ${database}`);
    await conn?.end();
  });

  it(`stores every hostile value exactly, outside quotes, inside '…' and inside "…"`, async () => {
    await conn.query(
      'CREATE TABLE t (k INT PRIMARY KEY, name VARCHAR(64) NOT NULL, a LONGTEXT, b LONGTEXT, c LONGTEXT)',
    );
    await conn.query(
      render(
        `INSERT INTO t (k, name, a, b, c) VALUES
{for $index, $lead = $batch}
  ({$index}, '{$lead.name}', {$lead.v}, '{$lead.v}', "{$lead.v}"){autocomma}
{end};`,
        profiles(names),
      ),
    );
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT k, name, a, b, c, HEX(a) AS ha, HEX(b) AS hb, HEX(c) AS hc FROM t ORDER BY k',
    );
    expectExact(
      rows.map((r) => ({ k: r.k, name: r.name, values: [r.a, r.b, r.c], hexes: [r.ha, r.hb, r.hc] })),
      names,
    );
    const [count] = await conn.query<mysql.RowDataPacket[]>(
      render(
        'SELECT COUNT(*) AS n FROM t WHERE a IN ({batch_in "v"}) AND c IN ({batch_in "v"})',
        profiles(names),
      ),
    );
    expect(count.map((r) => Number(r.n))).toEqual([names.length]);
  });

  describe('the examples/segments-mysql queries, unchanged', () => {
    const dir = join(import.meta.dirname, '../../examples/segments-mysql');
    const config = parseYaml(readFileSync(join(dir, 'backflow.yaml'), 'utf8')) as {
      segments: Record<string, { id: number; name: string }>;
      segment_integrations: Record<string, { queries: Record<string, string> }>;
    };
    const queries = Object.values(config.segment_integrations)[0]!.queries;
    const segment = Object.values(config.segments)[0]!;
    const q = (kind: string) => {
      const text = queries[kind];
      if (text === undefined) throw new Error(`the example has no ${kind} query`);
      return text;
    };
    // clientId is VARCHAR(255): every hostile value but the 100,000-character one.
    const ids = HOSTILE_NAMES.filter((n) => n !== 'long').map((n) => HOSTILE[n]);
    const members = async () => {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT segId, segment_id, clientId FROM mysegment',
      );
      // Sorted here: MariaDB's PAD SPACE collations order '' after '\x1a'.
      return rows.map((r) => [r.segId, r.segment_id, r.clientId]).sort((a, b) => byBytes(a[2], b[2]));
    };
    const expectedMembers = (list: readonly string[]) =>
      [...list]
        .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        .map((id) => [segment.id, segment.id, id]);

    beforeAll(async () => {
      await conn.query(readFileSync(join(dir, 'schema.sql'), 'utf8'));
    });

    it('add inserts a batch, and again only refreshes it', async () => {
      const batch = ids.map((CustomID) => ({ CustomID }));
      await conn.query(render(q('add'), batch, segment));
      await conn.query(render(q('add'), batch, segment));
      expect(await members()).toEqual(expectedMembers(ids));
    });

    it('remove deletes exactly the batch', async () => {
      const [gone, kept] = [ids.slice(0, 6), ids.slice(6)];
      await conn.query(
        render(
          q('remove'),
          gone.map((CustomID) => ({ CustomID })),
          segment,
        ),
      );
      expect(await members()).toEqual(expectedMembers(kept));
    });

    it('clear empties the segment', async () => {
      await conn.query(render(q('clear'), [], segment));
      expect(await members()).toEqual([]);
    });

    it('upsert_segment writes a hostile name exactly, then renames', async () => {
      const hostile = { id: segment.id, name: `VIP "gold" \\'; DROP TABLE segments; --` };
      await conn.query(render(q('upsert_segment'), [], hostile));
      await conn.query(render(q('upsert_segment'), [], { id: segment.id, name: `${hostile.name} 2` }));
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT segment_id, name FROM segments');
      expect(rows.map((r) => [r.segment_id, r.name])).toEqual([[segment.id, `${hostile.name} 2`]]);
    });

    it('delete_segment removes it', async () => {
      await conn.query(render(q('delete_segment'), [], segment));
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM segments');
      expect(rows.map((r) => Number(r.n))).toEqual([0]);
    });
  });
});

describe.skipIf(!servers.clickhouse)('template round trip on ClickHouse', () => {
  const render = renderer(clickhouseDialect);
  const names = HOSTILE_NAMES;
  const database = uniqueName('backflow_template');
  let client: ClickHouseClient;

  beforeAll(async () => {
    const admin = createClient({ url: servers.clickhouse });
    try {
      await admin.command({ query: `CREATE DATABASE ${database}` });
    } finally {
      await admin.close();
    }
    client = createClient({ url: servers.clickhouse, database });
  });
  afterAll(async () => {
    await client?.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await client?.close();
  });

  const select = async <T>(query: string): Promise<T[]> => {
    const rs = await client.query({ query, format: 'JSONEachRow' });
    return rs.json<T>();
  };

  it("stores every hostile value exactly, outside quotes and inside '…'", async () => {
    await client.command({
      query: 'CREATE TABLE t (k UInt32, name String, a String, b String) ENGINE = Memory',
    });
    // "…" is an identifier in ClickHouse: it is covered by the alias test below.
    await client.command({
      query: render(
        `INSERT INTO t (k, name, a, b) VALUES
{for $index, $lead = $batch}
  ({$index}, '{$lead.name}', {$lead.v}, '{$lead.v}'){autocomma}
{end}`,
        profiles(names),
      ),
    });
    const rows = await select<{ k: number; name: HostileName; a: string; b: string; ha: string; hb: string }>(
      'SELECT k, name, a, b, hex(a) AS ha, hex(b) AS hb FROM t ORDER BY k',
    );
    expectExact(
      rows.map((r) => ({ k: r.k, name: r.name, values: [r.a, r.b], hexes: [r.ha, r.hb] })),
      names,
    );
    const count = await select<{ n: number }>(
      render(
        'SELECT toUInt32(count()) AS n FROM t WHERE a IN ({batch_in "v"}) AND b IN ({batch_in "v"})',
        profiles(names),
      ),
    );
    expect(count).toEqual([{ n: names.length }]);
  });

  it.each(names.filter((n) => n !== 'empty'))('keeps %s exactly inside a "…" identifier', async (name) => {
    const sql = render('{for $index, $lead = $batch}SELECT 1 AS "{$lead.v}"{end}', [{ v: HOSTILE[name] }]);
    const rs = await client.query({ query: sql, format: 'JSON' });
    const body = await rs.json<Record<string, number>>();
    expect(body.meta?.map((m) => m.name)).toEqual([HOSTILE[name]]);
  });
});
