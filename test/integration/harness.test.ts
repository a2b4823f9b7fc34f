// The harness itself: every server the run started answers, and a fresh database per test
// file takes DDL, writes and reads, byte for byte.

import { createClient } from '@clickhouse/client';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import type {} from '../harness/context.js';
import { freshDatabase } from '../harness/databases.js';
import { requestedServers } from '../harness/server.js';

const servers = inject('servers');
// Quotes, a backslash, a NUL-free control character and non-ASCII: what escaping bugs trip on.
const tricky = `O'Brien "quoted" \\ back\tslash ünïcødé 🚀`;

describe('test servers', () => {
  it('provides exactly the servers BACKFLOW_TEST_SERVERS asks for', () => {
    expect(Object.keys(servers).sort()).toEqual(requestedServers(process.env.BACKFLOW_TEST_SERVERS).sort());
  });

  describe.skipIf(!servers.postgres)('postgres', () => {
    it('answers and stores rows in a fresh database', async () => {
      const url = await freshDatabase('postgres', 'harness');
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const version = await client.query<{ v: string }>('SELECT version() AS v');
        expect(version.rows[0]?.v).toMatch(/^PostgreSQL \d+/);
        const db = await client.query<{ d: string }>('SELECT current_database() AS d');
        expect(db.rows[0]?.d).toBe(new URL(url).pathname.slice(1));
        await client.query('CREATE TABLE people (id integer PRIMARY KEY, name text NOT NULL)');
        await client.query('INSERT INTO people VALUES ($1, $2), ($3, $4)', [1, tricky, 2, 'plain']);
        const rows = await client.query<{ id: number; name: string }>(
          'SELECT id, name FROM people ORDER BY id',
        );
        expect(rows.rows).toEqual([
          { id: 1, name: tricky },
          { id: 2, name: 'plain' },
        ]);
      } finally {
        await client.end();
      }
    });
  });

  describe.skipIf(!servers.mariadb)('mariadb', () => {
    it('answers and stores rows in a fresh database', async () => {
      const url = await freshDatabase('mariadb', 'harness');
      const conn = await mysql.createConnection({ uri: url });
      try {
        const [version] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
        expect(String(version[0]?.v)).toMatch(/MariaDB/);
        const [db] = await conn.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS d');
        expect(db[0]?.d).toBe(new URL(url).pathname.slice(1));
        await conn.query('CREATE TABLE people (id INT PRIMARY KEY, name TEXT NOT NULL)');
        await conn.execute('INSERT INTO people VALUES (?, ?), (?, ?)', [1, tricky, 2, 'plain']);
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT id, name FROM people ORDER BY id');
        expect(rows.map((r) => ({ ...r }))).toEqual([
          { id: 1, name: tricky },
          { id: 2, name: 'plain' },
        ]);
      } finally {
        await conn.end();
      }
    });
  });

  describe.skipIf(!servers.clickhouse)('clickhouse', () => {
    it('answers and stores rows in a fresh database', async () => {
      const url = await freshDatabase('clickhouse', 'harness');
      const client = createClient({ url });
      try {
        const version = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
        expect((await version.json<{ v: string }>())[0]?.v).toMatch(/^\d+\.\d+/);
        const db = await client.query({ query: 'SELECT currentDatabase() AS d', format: 'JSONEachRow' });
        expect((await db.json<{ d: string }>())[0]?.d).toBe(new URL(url).pathname.slice(1));
        await client.command({
          query: 'CREATE TABLE people (id UInt32, name String) ENGINE = MergeTree ORDER BY id',
        });
        await client.insert({
          table: 'people',
          values: [
            { id: 1, name: tricky },
            { id: 2, name: 'plain' },
          ],
          format: 'JSONEachRow',
        });
        const rows = await client.query({
          query: 'SELECT id, name FROM people ORDER BY id',
          format: 'JSONEachRow',
        });
        expect(await rows.json<{ id: number; name: string }>()).toEqual([
          { id: 1, name: tricky },
          { id: 2, name: 'plain' },
        ]);
      } finally {
        await client.close();
      }
    });
  });
});
