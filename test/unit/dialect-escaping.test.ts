/**
 * Every dialect's SQL text for a hostile corpus, exactly. Expectations are keyed by dialect
 * (`Record<DialectName, …>`), so a new dialect does not compile until it is covered here.
 */
import { describe, expect, it } from 'vitest';
import { UserError } from '../../engine/errors.js';
import { parseTemplate, renderTemplate } from '../../engine/segments/template.js';
import { dialect as bigquery } from '../../providers/bigquery/dialect.js';
import { dialect as clickhouse } from '../../providers/clickhouse/dialect.js';
import { dialect as mssql } from '../../providers/mssql/dialect.js';
import { dialect as mysql } from '../../providers/mysql/dialect.js';
import { dialect as oracle } from '../../providers/oracle/dialect.js';
import { dialect as postgres } from '../../providers/postgres/dialect.js';
import type { DialectName } from '../../providers/sdk.js';
import type { SqlDialect } from '../../providers/sql/dialect.js';
import { dialect as sqlite } from '../../providers/sqlite/dialect.js';
import { HOSTILE, type HostileName, LONG_X } from '../fixtures/hostile-values.js';

const DIALECTS: Record<DialectName, SqlDialect> = {
  sqlite,
  postgres,
  mysql,
  mssql,
  oracle,
  bigquery,
  clickhouse,
};

const CORPUS = HOSTILE;
type CorpusName = HostileName;

/** A value outside quotes, inside `'…'` and inside `"…"`; or refused (NUL where the server cannot take it). */
type Expect = { readonly literal: string; readonly single: string; readonly double: string } | 'rejected';

/** The quote-doubling family (SQLite, PostgreSQL, SQL Server, Oracle); `p` is the literal prefix. */
function doubling(p: string, nul: 'rejected' | 'raw', long: string): Record<CorpusName, Expect> {
  return {
    singleQuote: { literal: `${p}'O''Reilly'`, single: "O''Reilly", double: "O'Reilly" },
    doubleQuote: { literal: `${p}'say "hi"'`, single: 'say "hi"', double: 'say ""hi""' },
    trailingBackslash: {
      literal: String.raw`${p}'ends with \'`,
      single: 'ends with \\',
      double: 'ends with \\',
    },
    backslashQuote: { literal: String.raw`${p}'\'''`, single: String.raw`\''`, double: String.raw`\'` },
    dropTable: {
      literal: `${p}'''; DROP TABLE t; --'`,
      single: "''; DROP TABLE t; --",
      double: "'; DROP TABLE t; --",
    },
    deleteFrom: {
      literal: `${p}'"); DELETE FROM t; --'`,
      single: '"); DELETE FROM t; --',
      double: '""); DELETE FROM t; --',
    },
    newlines: { literal: `${p}'a\nb\r\nc'`, single: 'a\nb\r\nc', double: 'a\nb\r\nc' },
    tab: { literal: `${p}'a\tb'`, single: 'a\tb', double: 'a\tb' },
    nul: nul === 'rejected' ? 'rejected' : { literal: `${p}'a\0b'`, single: 'a\0b', double: 'a\0b' },
    controls: { literal: `${p}'\x1a\x7f'`, single: '\x1a\x7f', double: '\x1a\x7f' },
    backtick: { literal: `${p}'\`t\`'`, single: '`t`', double: '`t`' },
    unicode: {
      literal: `${p}'Zoë — 日本語 🎉👩‍👩‍👧'`,
      single: 'Zoë — 日本語 🎉👩‍👩‍👧',
      double: 'Zoë — 日本語 🎉👩‍👩‍👧',
    },
    empty: { literal: `${p}''`, single: '', double: '' },
    long: { literal: long, single: `${LONG_X}''`, double: `${LONG_X}'` },
  };
}

/** Oracle: 24 chunks of 4000 x, one of 3999, then the doubled quote (it would make the 25th 4001 bytes). */
const ORACLE_LONG = `(${[
  ...Array<string>(24).fill(`TO_CLOB('${'x'.repeat(4000)}')`),
  `TO_CLOB('${'x'.repeat(3999)}')`,
  "TO_CLOB('''')",
].join(' || ')})`;

/** Backslash dialects escape both quote kinds the same way, so `'…'` and `"…"` take the same text. */
function same(literal: string, inside: string): Expect {
  return { literal, single: inside, double: inside };
}

const EXPECTED: Record<DialectName, Record<CorpusName, Expect>> = {
  sqlite: doubling('', 'rejected', `'${LONG_X}'''`),
  postgres: doubling('', 'rejected', `'${LONG_X}'''`),
  mssql: doubling('N', 'raw', `N'${LONG_X}'''`),
  oracle: doubling('', 'raw', ORACLE_LONG),
  mysql: {
    singleQuote: same(String.raw`'O\'Reilly'`, String.raw`O\'Reilly`),
    doubleQuote: same(String.raw`'say \"hi\"'`, String.raw`say \"hi\"`),
    trailingBackslash: same(String.raw`'ends with \\'`, String.raw`ends with \\`),
    backslashQuote: same(String.raw`'\\\''`, String.raw`\\\'`),
    dropTable: same(String.raw`'\'; DROP TABLE t; --'`, String.raw`\'; DROP TABLE t; --`),
    deleteFrom: same(String.raw`'\"); DELETE FROM t; --'`, String.raw`\"); DELETE FROM t; --`),
    newlines: same(String.raw`'a\nb\r\nc'`, String.raw`a\nb\r\nc`),
    tab: same("'a\tb'", 'a\tb'),
    nul: same(String.raw`'a\0b'`, String.raw`a\0b`),
    controls: same(`${String.raw`'\Z`}\x7f'`, `${String.raw`\Z`}\x7f`),
    backtick: same("'`t`'", '`t`'),
    unicode: same("'Zoë — 日本語 🎉👩‍👩‍👧'", 'Zoë — 日本語 🎉👩‍👩‍👧'),
    empty: same("''", ''),
    long: same(`'${LONG_X}\\''`, `${LONG_X}\\'`),
  },
  clickhouse: {
    singleQuote: same(String.raw`'O\'Reilly'`, String.raw`O\'Reilly`),
    doubleQuote: same(String.raw`'say \"hi\"'`, String.raw`say \"hi\"`),
    trailingBackslash: same(String.raw`'ends with \\'`, String.raw`ends with \\`),
    backslashQuote: same(String.raw`'\\\''`, String.raw`\\\'`),
    dropTable: same(String.raw`'\'; DROP TABLE t; --'`, String.raw`\'; DROP TABLE t; --`),
    deleteFrom: same(String.raw`'\"); DELETE FROM t; --'`, String.raw`\"); DELETE FROM t; --`),
    newlines: same(String.raw`'a\nb\r\nc'`, String.raw`a\nb\r\nc`),
    tab: same(String.raw`'a\tb'`, String.raw`a\tb`),
    nul: same(String.raw`'a\0b'`, String.raw`a\0b`),
    controls: same("'\x1a\x7f'", '\x1a\x7f'),
    backtick: same("'\\`t\\`'", '\\`t\\`'),
    unicode: same("'Zoë — 日本語 🎉👩‍👩‍👧'", 'Zoë — 日本語 🎉👩‍👩‍👧'),
    empty: same("''", ''),
    long: same(`'${LONG_X}\\''`, `${LONG_X}\\'`),
  },
  bigquery: {
    singleQuote: same(String.raw`'O\'Reilly'`, String.raw`O\'Reilly`),
    doubleQuote: same(String.raw`'say \"hi\"'`, String.raw`say \"hi\"`),
    trailingBackslash: same(String.raw`'ends with \\'`, String.raw`ends with \\`),
    backslashQuote: same(String.raw`'\\\''`, String.raw`\\\'`),
    dropTable: same(String.raw`'\'; DROP TABLE t; --'`, String.raw`\'; DROP TABLE t; --`),
    deleteFrom: same(String.raw`'\"); DELETE FROM t; --'`, String.raw`\"); DELETE FROM t; --`),
    newlines: same(String.raw`'a\nb\r\nc'`, String.raw`a\nb\r\nc`),
    tab: same(String.raw`'a\tb'`, String.raw`a\tb`),
    nul: same(String.raw`'a\x00b'`, String.raw`a\x00b`),
    controls: same(String.raw`'\x1a\x7f'`, String.raw`\x1a\x7f`),
    backtick: same("'\\`t\\`'", '\\`t\\`'),
    unicode: same("'Zoë — 日本語 🎉👩‍👩‍👧'", 'Zoë — 日本語 🎉👩‍👩‍👧'),
    empty: same("''", ''),
    long: same(`'${LONG_X}\\''`, `${LONG_X}\\'`),
  },
};

const TEMPLATE = `{for $index, $lead = $batch}VALUES ({$lead.v}, '{$lead.v}', "{$lead.v}"){end}`;

describe.each(Object.keys(DIALECTS) as DialectName[])('%s', (name) => {
  const dialect = DIALECTS[name];
  const parsed = parseTemplate(TEMPLATE, name);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const render = (v: string) =>
    renderTemplate({ template: parsed.template, dialect, segment: { id: 1, name: 's' }, batch: [{ v }] });

  it.each(Object.keys(CORPUS) as CorpusName[])('%s', (entry) => {
    const value = CORPUS[entry];
    const want = EXPECTED[name][entry];
    if (want === 'rejected') {
      expect(() => render(value)).toThrow(UserError);
      expect(() => dialect.literal(value)).toThrow(/NUL character/);
      return;
    }
    expect(dialect.literal(value)).toBe(want.literal);
    expect(dialect.escapeInQuote(value, "'")).toBe(want.single);
    expect(dialect.escapeInQuote(value, '"')).toBe(want.double);
    expect(render(value)).toBe(`VALUES (${want.literal}, '${want.single}', "${want.double}")`);
  });
});

interface Basics {
  readonly ident: string;
  readonly table: string;
  readonly placeholders: readonly [string, string];
  readonly true: string;
  readonly false: string;
  readonly date: string;
  readonly json: string;
}

const BASICS: Record<DialectName, Basics> = {
  sqlite: {
    ident: '"we""ird"',
    table: '"sch"."t`b]l"',
    placeholders: ['?', '?'],
    true: 'TRUE',
    false: 'FALSE',
    date: "'2024-01-02T03:04:05.006Z'",
    json: `'{"a":[1,"x''y"],"b":"9007199254740993"}'`,
  },
  postgres: {
    ident: '"we""ird"',
    table: '"sch"."t`b]l"',
    placeholders: ['$1', '$12'],
    true: 'TRUE',
    false: 'FALSE',
    date: "'2024-01-02T03:04:05.006Z'",
    json: `'{"a":[1,"x''y"],"b":"9007199254740993"}'`,
  },
  mysql: {
    ident: '`we"ird`',
    table: '`sch`.`t``b]l`',
    placeholders: ['?', '?'],
    true: 'TRUE',
    false: 'FALSE',
    date: "'2024-01-02T03:04:05.006Z'",
    json: String.raw`'{\"a\":[1,\"x\'y\"],\"b\":\"9007199254740993\"}'`,
  },
  mssql: {
    ident: '[we"ird]',
    table: '[sch].[t`b]]l]',
    placeholders: ['@p1', '@p12'],
    true: '1',
    false: '0',
    date: "N'2024-01-02T03:04:05.006Z'",
    json: `N'{"a":[1,"x''y"],"b":"9007199254740993"}'`,
  },
  oracle: {
    ident: '"we""ird"',
    table: '"sch"."t`b]l"',
    placeholders: [':1', ':12'],
    true: '1',
    false: '0',
    date: "'2024-01-02T03:04:05.006Z'",
    json: `'{"a":[1,"x''y"],"b":"9007199254740993"}'`,
  },
  bigquery: {
    ident: '`we\\"ird`',
    table: '`sch`.`t\\`b]l`',
    placeholders: ['@p1', '@p12'],
    true: 'TRUE',
    false: 'FALSE',
    date: "'2024-01-02T03:04:05.006Z'",
    json: String.raw`'{\"a\":[1,\"x\'y\"],\"b\":\"9007199254740993\"}'`,
  },
  clickhouse: {
    ident: '`we\\"ird`',
    table: '`sch`.`t\\`b]l`',
    placeholders: ['?', '?'],
    true: '1',
    false: '0',
    date: "'2024-01-02T03:04:05.006Z'",
    json: String.raw`'{\"a\":[1,\"x\'y\"],\"b\":\"9007199254740993\"}'`,
  },
};

describe.each(Object.keys(DIALECTS) as DialectName[])(
  '%s: identifiers, placeholders, non-string literals',
  (name) => {
    const d = DIALECTS[name];
    const want = BASICS[name];

    it('quotes identifiers and dotted table names', () => {
      expect(d.quoteIdent('we"ird')).toBe(want.ident);
      expect(d.quoteTable('sch.t`b]l')).toBe(want.table);
      expect(() => d.quoteIdent('')).toThrow(UserError);
    });

    it('numbers its placeholders from 1', () => {
      expect([d.placeholder(1), d.placeholder(12)]).toEqual(want.placeholders);
      expect(() => d.placeholder(0)).toThrow(RangeError);
    });

    it('renders non-string values outside quotes', () => {
      expect(d.literal(true)).toBe(want.true);
      expect(d.literal(false)).toBe(want.false);
      expect(d.literal(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)))).toBe(want.date);
      expect(d.literal({ a: [1, "x'y"], b: 9007199254740993n })).toBe(want.json);
      expect(d.literal([1, 2])).toBe(name === 'mssql' ? "N'[1,2]'" : "'[1,2]'");
      expect([d.literal(42), d.literal(-1.5), d.literal(12345678901234567890n), d.literal(1e21)]).toEqual([
        '42',
        '-1.5',
        '12345678901234567890',
        '1e+21',
      ]);
      expect(
        [Number.NaN, Number.POSITIVE_INFINITY, null, undefined, new Date(Number.NaN)].map((v) =>
          d.literal(v),
        ),
      ).toEqual(['NULL', 'NULL', 'NULL', 'NULL', 'NULL']);
    });
  },
);

describe('oracle: literals over 4000 bytes become TO_CLOB chunks', () => {
  it('keeps 4000 bytes in one literal and splits at 4001', () => {
    expect(oracle.literal('x'.repeat(4000))).toBe(`'${'x'.repeat(4000)}'`);
    expect(oracle.literal('x'.repeat(4001))).toBe(`(TO_CLOB('${'x'.repeat(4000)}') || TO_CLOB('x'))`);
  });

  it('counts multi-byte characters and never splits a surrogate pair', () => {
    // € is 3 bytes in UTF-8: 1333 of them fit (3999 bytes).
    expect(oracle.literal('€'.repeat(1334))).toBe(`(TO_CLOB('${'€'.repeat(1333)}') || TO_CLOB('€'))`);
    // An emoji is counted as 6 bytes (CESU-8 worst case): 666 fit.
    expect(oracle.literal('😀'.repeat(667))).toBe(`(TO_CLOB('${'😀'.repeat(666)}') || TO_CLOB('😀'))`);
  });

  it('inside a template literal the value is only doubled (the template owns that quote)', () => {
    expect(oracle.escapeInQuote("'".repeat(3000), "'")).toBe("'".repeat(6000));
  });
});
