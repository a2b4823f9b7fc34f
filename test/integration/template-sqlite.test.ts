/**
 * Hostile values rendered through the template engine into SQLite, executed (with `exec`, which
 * would run any statement a value managed to add) and read back byte for byte.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../engine/errors.js';
import type { Profile } from '../../engine/segments/template.js';
import { parseTemplate, renderTemplate } from '../../engine/segments/template.js';
import { dialect } from '../../providers/sqlite/dialect.js';
import { HOSTILE, HOSTILE_NAMES, type HostileName } from '../fixtures/hostile-values.js';

function render(text: string, batch: readonly Profile[]): string {
  const parsed = parseTemplate(text, 'sqlite');
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return renderTemplate({ template: parsed.template, dialect, segment: { id: 1, name: 'seg' }, batch });
}

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex').toUpperCase();

/** SQLite cannot take a NUL inside SQL text: the dialect refuses it (tested below). */
const STORABLE = HOSTILE_NAMES.filter((n) => n !== 'nul');
const batch = STORABLE.map((name) => ({ name, v: HOSTILE[name] }));

const INSERT = `INSERT INTO t (k, name, a, b) VALUES
{for $index, $lead = $batch}
  ({$index}, '{$lead.name}', {$lead.v}, '{$lead.v}'){autocomma}
{end};`;

describe('template round trip on SQLite', () => {
  let db: Database.Database;
  beforeEach(() => {
    db = new Database(':memory:');
    db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, name TEXT NOT NULL, a TEXT, b TEXT)');
  });
  afterEach(() => db.close());

  it("stores every hostile value exactly, outside quotes and inside '…'", () => {
    db.exec(render(INSERT, batch));
    const rows = db.prepare('SELECT k, name, a, b, hex(a) AS ha, hex(b) AS hb FROM t ORDER BY k').all() as {
      k: number;
      name: HostileName;
      a: string;
      b: string;
      ha: string;
      hb: string;
    }[];
    expect(rows.map((r) => r.name)).toEqual(STORABLE);
    for (const r of rows) {
      const want = HOSTILE[r.name];
      expect({ name: r.name, a: r.a, b: r.b }).toEqual({ name: r.name, a: want, b: want });
      expect([r.ha, r.hb]).toEqual([hex(want), hex(want)]);
    }
  });

  it('matches every hostile value with batch_in', () => {
    db.exec(render(INSERT, batch));
    const count = render(
      'SELECT count(*) AS n FROM t WHERE a IN ({batch_in "v"}) AND b IN ({batch_in "v"})',
      batch,
    );
    expect(db.prepare(count).get()).toEqual({ n: STORABLE.length });
    db.exec(render('DELETE FROM t WHERE a IN ({batch_in "v"})', batch));
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 0 });
  });

  it.each(STORABLE)('keeps %s exactly inside a "…" identifier', (name) => {
    // better-sqlite3 builds SQLite without double-quoted string literals, so "…" is an
    // identifier here: read it back as the column name.
    const sql = render('{for $index, $lead = $batch}SELECT 1 AS "{$lead.v}"{end}', [{ v: HOSTILE[name] }]);
    const columns = db.prepare(sql).columns();
    expect(columns.map((c) => c.name)).toEqual([HOSTILE[name]]);
  });

  it('renders numbers as numbers and missing values as NULL', () => {
    db.exec('CREATE TABLE n (k INTEGER, x, y)');
    db.exec(
      render(
        'INSERT INTO n VALUES {for $index, $lead = $batch}({$index}, {$lead.x}, {$lead.y}){autocomma}{end}',
        [{ x: 5, y: -1.25 }, { x: 9007199254740993n }],
      ),
    );
    expect(
      db.prepare('SELECT k, typeof(x) AS tx, x, typeof(y) AS ty FROM n ORDER BY k').safeIntegers().all(),
    ).toEqual([
      { k: 0n, tx: 'integer', x: 5n, ty: 'real' },
      { k: 1n, tx: 'integer', x: 9007199254740993n, ty: 'null' },
    ]);
  });

  it('refuses a NUL rather than truncating the statement', () => {
    expect(() => render(INSERT, [{ name: 'nul', v: HOSTILE.nul }])).toThrow(UserError);
  });
});
