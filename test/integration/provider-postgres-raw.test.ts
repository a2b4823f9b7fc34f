// The postgres source's raw read path (`streamRaw`) against a real PostgreSQL server: COPY TO STDOUT
// when no statement_timeout is set, the FETCH cursor otherwise. Both must give the rows `stream` gives,
// and one fingerprint per row text whichever path read it.

import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../providers/fingerprint.js';
import {
  copyLine,
  escapeCopyText,
  LineSplitter,
  unescapeCopyText,
} from '../../providers/postgres/copy-out.js';
import { provider } from '../../providers/postgres/index.js';
import type { RawRows, Row, Session } from '../../providers/sdk.js';
import { MemoryGrowth } from '../fixtures/memory.js';
import { AWKWARD_TABLE_SQL } from '../fixtures/postgres-awkward.js';
import { rejection } from '../fixtures/provider-errors.js';
import { drainSlowly, readUntilKilled } from '../fixtures/streams.js';
import { freshDatabase, serverUrl } from '../harness/databases.js';

const base = serverUrl('postgres');

async function open(url: string, extra: { statement_timeout?: string } = {}): Promise<Session> {
  return provider.open({
    settings: { type: 'postgres', url, ...extra },
    configDir: '/nonexistent',
    address: 'source.pg',
  });
}

interface RawBatch {
  readonly rows: Row[];
  readonly fingerprints: string[];
}

/** Every batch of `streamRaw`, fully decoded, with its fingerprints. */
async function collectRaw(session: Session, sql: string, batchSize = 1000): Promise<RawBatch[]> {
  const batches: RawBatch[] = [];
  for await (const b of session.source!.streamRaw!({ sql, batchSize })) {
    const rows: Row[] = [];
    const fingerprints: string[] = [];
    for (let i = 0; i < b.length; i++) {
      rows.push(b.row(i));
      fingerprints.push(b.fingerprint(i));
    }
    batches.push({ rows, fingerprints });
  }
  return batches;
}

async function collect(session: Session, sql: string, batchSize = 1000): Promise<Row[][]> {
  const batches: Row[][] = [];
  for await (const b of session.source!.stream({ sql, batchSize })) batches.push([...b]);
  return batches;
}

/** The lines of `COPY (sql) TO STDOUT` read by a plain pg client, as bytes without their newline. */
async function copyLines(client: pg.Client, sql: string): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of client.query(copyTo(`COPY (${sql}) TO STDOUT`))) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  const lines: Buffer[] = [];
  for (let p = 0; p < all.length; ) {
    const nl = all.indexOf(10, p);
    lines.push(all.subarray(p, nl));
    p = nl + 1;
  }
  return lines;
}

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe('COPY text escaping', () => {
  it('escapes exactly what CopyAttributeOutText escapes', () => {
    expect(escapeCopyText('plain')).toBe('plain');
    expect(escapeCopyText('a\\b')).toBe('a\\\\b');
    expect(escapeCopyText('\b\t\n\v\f\r')).toBe('\\b\\t\\n\\v\\f\\r');
    // Other control characters (and DEL) go out as they are.
    expect(escapeCopyText('\x01\x07\x0e\x1b\x1f\x7f')).toBe('\x01\x07\x0e\x1b\x1f\x7f');
    expect(escapeCopyText('\\N')).toBe('\\\\N');
    expect(copyLine(['1', null, '', '\\N', 'a\tb'])).toBe('1\t\\N\t\t\\\\N\ta\\tb');
    expect(copyLine([])).toBe('');
  });

  it('unescapes every sequence COPY FROM reads, octal and hex bytes included', () => {
    for (const s of ['', 'plain', 'a\\b', '\\N', '\b\t\n\v\f\r', '\x01\x1f', 'Zoë 🎉 \\ \t', '\\\\\\'])
      expect(unescapeCopyText(escapeCopyText(s))).toBe(s);
    expect(unescapeCopyText('\\101\\x41\\x4a\\7\\07x')).toBe('AAJ\x07\x07x');
    expect(unescapeCopyText('\\xg')).toBe('xg');
    expect(unescapeCopyText('\\q\\"')).toBe('q"');
    // Bytes past ASCII written as octal or hex are UTF-8: é is C3 A9.
    expect(unescapeCopyText('caf\\303\\251 \\xc3\\xa9')).toBe('café é');
    expect(unescapeCopyText('trailing\\')).toBe('trailing\\');
  });

  it('splits lines across chunk boundaries into batches of a fixed size', () => {
    const text = Buffer.from('1\ta\n22\tbb\n333\tccc\n4444\tdddd\n55555\teeeee\n');
    // Every way of cutting the text into two chunks gives the same lines.
    for (let cut = 0; cut <= text.length; cut++) {
      const splitter = new LineSplitter(2);
      const batches = [...splitter.push(text.subarray(0, cut)), ...splitter.push(text.subarray(cut))];
      const last = splitter.end();
      if (last) batches.push(last);
      const lines = batches.flatMap((b) =>
        Array.from({ length: b.count }, (_, i) =>
          b.bytes.toString('utf8', i === 0 ? 0 : b.ends[i - 1]! + 1, b.ends[i]!),
        ),
      );
      expect(batches.map((b) => b.count)).toEqual([2, 2, 1]);
      expect(lines).toEqual(['1\ta', '22\tbb', '333\tccc', '4444\tdddd', '55555\teeeee']);
    }
    const cut = new LineSplitter(10);
    cut.push(Buffer.from('1\tx\n2\ty'));
    expect(() => cut.end()).toThrow(/ended inside a row/);
  });
});

describe.skipIf(!base)('postgres source: streamRaw', () => {
  let url: string;
  let admin: pg.Client;
  /** No statement_timeout: the COPY path. */
  let copy: Session;
  /** statement_timeout: the cursor path. */
  let cursor: Session;
  const paths = () =>
    [
      ['COPY', copy],
      ['cursor', cursor],
    ] as const;

  beforeAll(async () => {
    url = await freshDatabase('postgres', 'provider_pg_raw');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    copy = await open(url);
    cursor = await open(url, { statement_timeout: '5m' });
    await admin.query(AWKWARD_TABLE_SQL);
  });
  afterAll(async () => {
    await copy?.close();
    await cursor?.close();
    await admin?.end();
  });

  it('takes the COPY path without statement_timeout and the cursor path with it', async () => {
    // current_query(): the top-level statement the model runs in.
    const sql = 'SELECT current_query() AS q';
    const [viaCopy] = await collectRaw(copy, sql);
    expect(viaCopy!.rows).toEqual([{ q: 'COPY (\nSELECT current_query() AS q\n) TO STDOUT' }]);
    const [viaCursor] = await collectRaw(cursor, sql);
    expect(viaCursor!.rows).toEqual([{ q: 'FETCH FORWARD 1000 FROM backflow_model' }]);
  });

  it('reads awkward types exactly as stream does, on both paths', async () => {
    const sql = 'SELECT * FROM awkward ORDER BY id';
    const [expected] = await collect(copy, sql);
    expect(expected).toHaveLength(3);
    expect(expected![0]!.big).toBe('9007199254740993');
    expect(expected![0]!.b).toEqual(Buffer.from([0, 255]));
    const fingerprints: string[][] = [];
    for (const [, session] of paths()) {
      const batches = await collectRaw(session, sql);
      expect(batches).toHaveLength(1);
      expect(batches[0]!.rows).toEqual(expected);
      fingerprints.push(batches[0]!.fingerprints);
      // pick decodes just the asked-for columns, valued the same way.
      for await (const b of session.source!.streamRaw!({ sql, batchSize: 10 })) {
        for (let i = 0; i < b.length; i++) {
          const row = expected![i]!;
          expect(b.pick(i, ['id'])).toEqual({ id: row.id });
          expect(b.pick(i, ['doc', 'big', 'ts', 'b'])).toEqual({
            doc: row.doc,
            big: row.big,
            ts: row.ts,
            b: row.b,
          });
          expect(b.pick(i, ['no_such_column'])).toEqual({});
        }
      }
    }
    expect(fingerprints[0]).toEqual(fingerprints[1]);
    expect(new Set(fingerprints[0]).size).toBe(3);
  });

  describe('hostile text', () => {
    const values: (string | null)[] = [
      Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join(''),
      ...Array.from({ length: 31 }, (_, i) => `[${String.fromCharCode(i + 1)}]`),
      '\\',
      '\\\\',
      'a\\b',
      'ends with a backslash\\',
      '\\N',
      'N',
      '\\.',
      '\\101 \\x41 \\',
      '',
      null,
      'tab\there',
      'new\nline',
      'crlf\r\n',
      'Zoë — 日本語 🎉 e\u0301 \u2028 \u{1f468}\u200d\u{1f469}\u200d\u{1f467}',
      '\x7f DEL',
      '"quoted" \'single\'',
    ];

    beforeAll(async () => {
      await admin.query(
        'CREATE TABLE hostile (id int PRIMARY KEY, t text, doc jsonb, arr text[], bin bytea, other text)',
      );
      for (const [i, v] of values.entries()) {
        await admin.query('INSERT INTO hostile VALUES ($1, $2, $3, $4, $5, $6)', [
          i + 1,
          v,
          v === null ? null : JSON.stringify({ v, n: [v, '\\'] }),
          v === null ? null : [v, null, 'NULL', ''],
          v === null ? null : Buffer.from(v, 'utf8'),
          i % 2 ? '' : null,
        ]);
      }
    });

    it('gives the same rows as stream and the same fingerprints on both paths', async () => {
      const sql = 'SELECT * FROM hostile ORDER BY id';
      const [expected] = await collect(copy, sql);
      expect(expected!.map((r) => r.t)).toEqual(values);
      const viaCopy = await collectRaw(copy, sql, 7);
      const viaCursor = await collectRaw(cursor, sql, 7);
      expect(viaCopy.flatMap((b) => b.rows)).toEqual(expected);
      expect(viaCursor.flatMap((b) => b.rows)).toEqual(expected);
      const fpCopy = viaCopy.flatMap((b) => b.fingerprints);
      const fpCursor = viaCursor.flatMap((b) => b.fingerprints);
      expect(fpCursor).toEqual(fpCopy);
      // Every row differs from every other (the empty string and NULL too), and so does its fingerprint.
      expect(new Set(fpCopy).size).toBe(values.length);
      // pick finds and decodes any column (escaped, non-ASCII, NULL, empty) as row() does.
      const all = ['other', 'bin', 'arr', 'doc', 't', 'id'];
      for (const [, session] of paths()) {
        let n = 0;
        for await (const b of session.source!.streamRaw!({ sql, batchSize: 9 })) {
          for (let i = 0; i < b.length; i++, n++) {
            const row = expected![n]!;
            expect(b.pick(i, all)).toEqual(Object.fromEntries(all.map((c) => [c, row[c]])));
            expect(b.pick(i, ['t'])).toEqual({ t: row.t });
            expect(b.pick(i, ['id', 'other'])).toEqual({ id: row.id, other: row.other });
          }
        }
        expect(n).toBe(values.length);
      }
    });

    it('fingerprints a row as the hash of the line COPY sends for it', async () => {
      const sql = 'SELECT * FROM hostile ORDER BY id';
      const lines = await copyLines(admin, sql);
      expect(lines).toHaveLength(values.length);
      const want = lines.map((l) => fingerprint(l));
      expect((await collectRaw(copy, sql, 5)).flatMap((b) => b.fingerprints)).toEqual(want);
      expect((await collectRaw(cursor, sql, 5)).flatMap((b) => b.fingerprints)).toEqual(want);
      // A single-column read: the line is the escaped value alone.
      const one = await collectRaw(cursor, 'SELECT t FROM hostile ORDER BY id', 100);
      expect(one[0]!.fingerprints).toEqual(
        values.map((v) => fingerprint(Buffer.from(v === null ? '\\N' : escapeCopyText(v)))),
      );
    });

    it('gives each row as its COPY line, whole or with columns picked and reordered, on both paths', async () => {
      const sql = 'SELECT * FROM hostile ORDER BY id';
      const lines = await copyLines(admin, sql);
      const fieldsOf = (line: Buffer) => line.toString('latin1').split('\t');
      for (const [, session] of paths()) {
        let n = 0;
        for await (const b of session.source!.streamRaw!({ sql, batchSize: 4 })) {
          const text = b.text!;
          expect(text.format).toBe('postgres-copy');
          expect(text.columns).toEqual([
            { name: 'id', type: 23 },
            { name: 't', type: 25 },
            { name: 'doc', type: 3802 },
            { name: 'arr', type: 1009 },
            { name: 'bin', type: 17 },
            { name: 'other', type: 25 },
          ]);
          for (let i = 0; i < b.length; i++, n++) {
            const want = fieldsOf(lines[n]!);
            expect(Buffer.from(text.line(i, Int32Array.of(0, 1, 2, 3, 4, 5)))).toEqual(
              Buffer.concat([lines[n]!, Buffer.from('\n')]),
            );
            expect(Buffer.from(text.line(i, Int32Array.of(4, 0, 5, 1))).toString('latin1')).toBe(
              `${[want[4], want[0], want[5], want[1]].join('\t')}\n`,
            );
            expect(Buffer.from(text.line(i, Int32Array.of(2))).toString('latin1')).toBe(`${want[2]}\n`);
          }
        }
        expect(n).toBe(values.length);
      }
    });

    it('fingerprints each of text and NULL columns distinctly per value', async () => {
      // The same key with a changed value must change the fingerprint, whichever column changed.
      const sql = `SELECT 1 AS id, v FROM (VALUES (NULL::text), (''), ('\\N'), ('\\\\N'), (E'\\t'), ('\\t')) AS x(v)`;
      for (const [, session] of paths()) {
        const [b] = await collectRaw(session, sql);
        expect(b!.rows.map((r) => r.v)).toEqual([null, '', '\\N', '\\\\N', '\t', '\\t']);
        expect(new Set(b!.fingerprints).size).toBe(6);
      }
    });
  });

  it('keeps the later of two columns with the same name, as pg row objects do', async () => {
    const sql = `SELECT 1 AS a, 'x' AS b, 2 AS a`;
    const [expected] = await collect(copy, sql);
    expect(expected).toEqual([{ a: 2, b: 'x' }]);
    for (const [, session] of paths()) {
      for await (const b of session.source!.streamRaw!({ sql, batchSize: 10 })) {
        expect(b.row(0)).toEqual(expected![0]);
        expect(Object.keys(b.row(0))).toEqual(Object.keys(expected![0]!));
        expect(b.pick(0, ['a'])).toEqual({ a: 2 });
      }
    }
  });

  it('reads a query without columns', async () => {
    const sql = 'SELECT FROM generate_series(1, 3)';
    expect(await collect(copy, sql)).toEqual([[{}, {}, {}]]);
    const fps: string[][] = [];
    for (const [, session] of paths()) {
      const batches = await collectRaw(session, sql);
      expect(batches.map((b) => b.rows)).toEqual([[{}, {}, {}]]);
      fps.push(batches[0]!.fingerprints);
    }
    expect(fps[0]).toEqual(fps[1]);
  });

  it('batches by batchSize and reads an empty result as no batches', async () => {
    for (const [, session] of paths()) {
      const batches = await collectRaw(session, 'SELECT g AS id FROM generate_series(1, 2500) g', 1000);
      expect(batches.map((b) => b.rows.length)).toEqual([1000, 1000, 500]);
      expect(batches[2]!.rows.at(-1)).toEqual({ id: 2500 });
      expect(batches.flatMap((b) => b.rows.map((r) => r.id))).toEqual(
        Array.from({ length: 2500 }, (_, i) => i + 1),
      );
      expect(await collectRaw(session, 'SELECT 1 AS x WHERE false')).toEqual([]);
      // Exactly a multiple of batchSize: no empty batch at the end.
      const even = await collectRaw(session, 'SELECT g FROM generate_series(1, 2000) g', 1000);
      expect(even.map((b) => b.rows.length)).toEqual([1000, 1000]);
    }
  });

  it('reads rows longer than a network chunk, split anywhere', async () => {
    const sql = `SELECT g AS id, repeat(chr(64 + g), 70000 + g * 997) AS pad, g % 2 = 0 AS even
                   FROM generate_series(1, 20) g`;
    const [expected] = await collect(copy, sql);
    for (const [, session] of paths()) {
      const batches = await collectRaw(session, sql, 3);
      expect(batches.map((b) => b.rows.length)).toEqual([3, 3, 3, 3, 3, 3, 2]);
      expect(batches.flatMap((b) => b.rows)).toEqual(expected);
      expect(batches.flatMap((b) => b.fingerprints)).toEqual(
        expected!.map((r) => fingerprint(Buffer.from(`${r.id}\t${r.pad}\t${r.even ? 't' : 'f'}`))),
      );
    }
  });

  it('reads a model that ends in a line comment or a semicolon', async () => {
    for (const [, session] of paths()) {
      expect(await collectRaw(session, 'SELECT 1 AS one -- trailing comment')).toEqual([
        { rows: [{ one: 1 }], fingerprints: [fingerprint(Buffer.from('1'))] },
      ]);
      const [b] = await collectRaw(session, 'SELECT 2 AS two;  \n');
      expect(b!.rows).toEqual([{ two: 2 }]);
    }
  });

  it('returns the connection to the pool when the caller stops early', async () => {
    for (const [name, session] of paths()) {
      // More early stops than the pool has connections: a leaked one would hang the next.
      for (let i = 0; i < 6; i++) {
        for await (const b of session.source!.streamRaw!({
          sql: `SELECT g, 'early stop ${name}' AS marker FROM generate_series(1, 1000000) g`,
          batchSize: 100,
        })) {
          expect(b.length).toBe(100);
          expect(b.pick(99, ['g'])).toEqual({ g: 100 });
          break;
        }
      }
      const [rows] = await collect(session, 'SELECT 1 AS ok');
      expect(rows).toEqual([{ ok: 1 }]);
      const [raw] = await collectRaw(session, 'SELECT 2 AS ok');
      expect(raw!.rows).toEqual([{ ok: 2 }]);
    }
    // The abandoned COPYs do not run on: their connections were closed and the server let them go.
    const gone = await until(async () => {
      const r = await admin.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'COPY (%early stop COPY%'`,
      );
      return r.rows[0].n === 0;
    });
    expect(gone).toBe(true);
  });

  it('stops at once when the signal aborts, and the session recovers', async () => {
    for (const [, session] of paths()) {
      const ac = new AbortController();
      const reason = new Error('stop now');
      let seen = 0;
      const run = async () => {
        for await (const b of session.source!.streamRaw!({
          sql: 'SELECT g FROM generate_series(1, 3000000) g',
          batchSize: 500,
          signal: ac.signal,
        })) {
          seen += b.length;
          if (seen === 1000) ac.abort(reason);
        }
      };
      await expect(run()).rejects.toBe(reason);
      expect(seen).toBe(1000);
      const [raw] = await collectRaw(session, 'SELECT 3 AS ok');
      expect(raw!.rows).toEqual([{ ok: 3 }]);
    }
  });

  it('keeps memory flat while reading a large result', async () => {
    for (const [, session] of paths()) {
      let count = 0;
      const growth = new MemoryGrowth();
      for await (const b of session.source!.streamRaw!({
        sql: "SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 300000) g",
        batchSize: 2000,
      })) {
        for (let i = 0; i < b.length; i++) {
          b.fingerprint(i);
          b.pick(i, ['id']);
        }
        count += b.length;
        growth.sample();
      }
      expect(count).toBe(300_000);
      // The whole result is ~65 MB as COPY text and ~100 MB as JS objects; two batches are ~1 MB.
      expect(growth.peak).toBeLessThan(25 * 1024 * 1024);
    }
  });

  it('reports a syntax error or a missing table with the server message', async () => {
    for (const [, session] of paths()) {
      const e = await rejection(collectRaw(session, 'SELEC 1'));
      expect(e.code).toBe('query_failed');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain('syntax error at or near "SELEC"');
      const e2 = await rejection(collectRaw(session, 'SELECT * FROM no_such_table'));
      expect(e2.code).toBe('query_failed');
      expect(e2.message).toContain('relation "no_such_table" does not exist');
    }
  });

  it('reports an error raised part-way through, after the rows before it, and stays usable', async () => {
    for (const [, session] of paths()) {
      let n = 0;
      const run = async () => {
        for await (const b of session.source!.streamRaw!({
          sql: 'SELECT g, 1 / (g - 30000) AS boom FROM generate_series(1, 50000) g',
          batchSize: 1000,
        }))
          n += b.length;
      };
      const e = await rejection(run());
      expect(e.code).toBe('query_failed');
      expect(e.message).toContain('division by zero');
      expect(n).toBeLessThan(30_000);
      const [raw] = await collectRaw(session, 'SELECT 4 AS ok');
      expect(raw!.rows).toEqual([{ ok: 4 }]);
    }
  });

  it('stops a query at statement_timeout on the cursor path, bounding each fetch', async () => {
    const s = await open(url, { statement_timeout: '200ms' });
    try {
      const e = await rejection(collectRaw(s, 'SELECT pg_sleep(3)'));
      expect(e.code).toBe('statement_timeout');
      expect(e.retryable).toBe(true);
      expect(e.message).toContain('statement timeout');
      // A slow consumer is not a slow query.
      const slow = await drainSlowly(
        s.source!.streamRaw!({ sql: 'SELECT g FROM generate_series(1, 5000) g', batchSize: 500 }),
      );
      expect(slow.rows).toBe(5000);
      expect(slow.ms).toBeGreaterThan(900);
    } finally {
      await s.close();
    }
  });

  it('fails retryably when the connection is killed mid-stream', async () => {
    for (const [name, extra, pattern] of [
      ['COPY', {}, 'COPY (%generate_series(1, 5000000)%'],
      ['cursor', { statement_timeout: '5m' }, 'FETCH FORWARD 499 FROM backflow_model%'],
    ] as const) {
      const s = await open(url, extra);
      try {
        const e = await rejection(
          readUntilKilled(
            s.source!.streamRaw!({ sql: 'SELECT g FROM generate_series(1, 5000000) g', batchSize: 499 }),
            499,
            async () => {
              const killed = await admin.query(
                `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
                  WHERE query LIKE $1 AND pid <> pg_backend_pid()`,
                [pattern],
              );
              expect(
                killed.rows.map((r) => r.ok),
                name,
              ).toEqual([true]);
            },
          ),
        );
        expect(e.retryable).toBe(true);
        expect(e.code).toBe('connection_lost');
        const [raw] = await collectRaw(s, 'SELECT 5 AS ok');
        expect(raw!.rows).toEqual([{ ok: 5 }]);
      } finally {
        await s.close();
      }
    }
  });

  it('decodes rows lazily: a batch is usable in any order, any number of times', async () => {
    let batch: RawRows | undefined;
    for await (const b of copy.source!.streamRaw!({
      sql: 'SELECT * FROM awkward ORDER BY id',
      batchSize: 10,
    })) {
      batch = b;
    }
    const [expected] = await collect(copy, 'SELECT * FROM awkward ORDER BY id');
    expect(batch!.row(2)).toEqual(expected![2]);
    expect(batch!.row(0)).toEqual(expected![0]);
    expect(batch!.fingerprint(1)).toBe(batch!.fingerprint(1));
    expect(() => batch!.row(3)).toThrow(RangeError);
    expect(() => batch!.fingerprint(-1)).toThrow(RangeError);
  });
});
