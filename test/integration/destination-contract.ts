/**
 * The database destination contract: every SQL provider (sqlite, postgres, mysql, …) loads the
 * same records into the same tables with the same results. What differs by database (column
 * types for the DDL, the server's own wording of an error, what a value it cannot store does)
 * is keyed by dialect, so adding a dialect to `ContractDialect` fails to compile until covered.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ActionName, LoadRecord, RecordResult, Row, Session } from '../../providers/sdk.js';
import { ProviderError } from '../../providers/sdk.js';
import type { SqlDialect } from '../../providers/sql/dialect.js';
import { HOSTILE, HOSTILE_NAMES, type HostileName } from '../fixtures/hostile-values.js';

export type ContractDialect = 'sqlite' | 'postgres' | 'mysql';

export interface DestinationContext {
  readonly name: ContractDialect;
  /** Quoting for the DDL the suite writes. */
  readonly dialect: SqlDialect;
  /** Opens a provider session on the database holding the suite's tables. */
  open(): Promise<Session>;
  /** Runs SQL beside the provider (DDL, fixtures); one statement per call. */
  exec(sql: string): Promise<void>;
  /** Reads rows beside the provider. */
  query(sql: string): Promise<readonly Row[]>;
}

/** Column types for the suite's tables. */
const TYPES: Record<ContractDialect, { key: string; text: string; int: string }> = {
  sqlite: { key: 'TEXT', text: 'TEXT', int: 'INTEGER' },
  postgres: { key: 'text', text: 'text', int: 'bigint' },
  mysql: { key: 'VARCHAR(191)', text: 'LONGTEXT', int: 'BIGINT' },
};

/** A fragment of the server's own message for each kind of rejected record. */
const MESSAGES: Record<ContractDialect, { check: string; notNull: string; unique: string }> = {
  sqlite: {
    check: 'CHECK constraint failed',
    notNull: 'NOT NULL constraint failed: crm.email',
    unique: 'UNIQUE constraint failed: crm.id',
  },
  postgres: {
    check: 'violates check constraint',
    notNull: 'null value in column "email"',
    unique: 'already exists',
  },
  mysql: { check: 'failed for', notNull: "Column 'email' cannot be null", unique: 'Duplicate entry' },
};

/** Hostile values a dialect cannot store as text (PostgreSQL text refuses U+0000): rejected, not mangled. */
const UNSTORABLE: Record<ContractDialect, readonly HostileName[]> = {
  sqlite: [],
  postgres: ['nul'],
  mysql: [],
};

const rec = (
  key: string,
  fields: Record<string, unknown> | null,
  change: LoadRecord['change'] = 'added',
): LoadRecord => ({
  change,
  key,
  idempotencyKey: `i-${key}`,
  fields,
});

/** Driver values as text, so one expectation fits every database (bigint as string, numbers, …). */
function text(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

export function destinationContract(title: string, ctx: DestinationContext): void {
  describe(`destination contract: ${title}`, () => {
    const t = TYPES[ctx.name];
    const msg = MESSAGES[ctx.name];
    const q = (name: string) => ctx.dialect.quoteIdent(name);
    let session: Session;

    beforeAll(async () => {
      await ctx.exec(
        `CREATE TABLE crm (id ${t.key} PRIMARY KEY, email ${t.text} NOT NULL CHECK (email LIKE '%@%'), score ${t.int}, traits ${t.text}, note ${t.text})`,
      );
      await ctx.exec(`CREATE TABLE plain (id ${t.key}, email ${t.text})`);
      await ctx.exec(`CREATE TABLE hostile (id ${t.key} PRIMARY KEY, v ${t.text})`);
      await ctx.exec(
        `CREATE TABLE ${q('Odd "Table"')} (${q('Key')} ${t.key} PRIMARY KEY, ${q('Value;--')} ${t.text})`,
      );
      session = await ctx.open();
    });
    afterAll(async () => {
      await session?.close();
    });
    beforeEach(async () => {
      await ctx.exec('DELETE FROM crm');
    });

    const load = (
      action: ActionName,
      records: readonly LoadRecord[],
      table = 'crm',
      key: string | undefined = 'id',
    ) =>
      session.destination!.load({
        mapping: 'contract',
        syncId: 'sync-1',
        action,
        options: { table, ...(key === undefined ? {} : { key }) },
        records,
      });

    async function crm(): Promise<Record<string, string | null>[]> {
      const rows = await ctx.query('SELECT id, email, score, traits, note FROM crm ORDER BY id');
      return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, text(v)])));
    }

    const failures = (res: readonly RecordResult[]) =>
      res.flatMap((r, i) => (r.status === 'ok' ? [] : [{ i, ...r }]));

    it('upserts: inserts new keys, then updates them, with values exactly as sent', async () => {
      const first = await load('upsert', [
        rec('1', {
          id: '1',
          email: "o'reilly@x",
          score: 9007199254740993n,
          traits: { plan: 'pro', tags: ['a', null] },
          note: 'Zoë — 日本語 🎉',
        }),
        rec('2', { email: 'b@x', score: -5, traits: null, note: null }),
      ]);
      expect(first).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      const rows = await crm();
      expect(rows.map((r) => ({ ...r, traits: null }))).toEqual([
        { id: '1', email: "o'reilly@x", score: '9007199254740993', traits: null, note: 'Zoë — 日本語 🎉' },
        { id: '2', email: 'b@x', score: '-5', traits: null, note: null },
      ]);
      expect(JSON.parse(rows[0]!.traits!)).toEqual({ plan: 'pro', tags: ['a', null] });

      const again = await load('upsert', [rec('2', { email: 'b2@x', score: 7 }, 'updated')]);
      expect(again).toEqual([{ status: 'ok' }]);
      // Columns the record does not carry keep their value.
      expect((await crm())[1]).toEqual({ id: '2', email: 'b2@x', score: '7', traits: null, note: null });
    });

    it('writes the record key into the key column unless the fields carry it', async () => {
      await load('upsert', [rec('["k",1]', { email: 'a@x' }), rec('ignored', { id: 'own', email: 'b@x' })]);
      expect((await crm()).map((r) => r.id)).toEqual(['["k",1]', 'own']);
    });

    it('rejects only the records that break a constraint, with the server message, in order', async () => {
      const records = Array.from({ length: 50 }, (_, i) =>
        rec(String(100 + i), { email: i === 7 || i === 31 ? 'no-at-sign' : `u${i}@x`, note: 'n' }),
      );
      records[20] = rec('120', { email: null });
      const res = await load('upsert', records);
      expect(res).toHaveLength(50);
      expect(failures(res)).toEqual([
        { i: 7, status: 'rejected', code: 'check_violation', message: expect.stringContaining(msg.check) },
        {
          i: 20,
          status: 'rejected',
          code: 'not_null_violation',
          message: expect.stringContaining(msg.notNull),
        },
        { i: 31, status: 'rejected', code: 'check_violation', message: expect.stringContaining(msg.check) },
      ]);
      const ids = (await crm()).map((r) => r.id);
      expect(ids).toHaveLength(47);
      expect(ids).not.toContain('107');
      expect(ids).toContain('149');
    });

    it('inserts, and rejects a duplicate key without losing the rest of the batch', async () => {
      expect(await load('insert', [rec('1', { id: '1', email: 'a@x' })], 'crm', undefined)).toEqual([
        { status: 'ok' },
      ]);
      const res = await load(
        'insert',
        [rec('1', { id: '1', email: 'again@x' }), rec('2', { id: '2', email: 'b@x' })],
        'crm',
        undefined,
      );
      expect(res).toEqual([
        { status: 'rejected', code: 'unique_violation', message: expect.stringContaining(msg.unique) },
        { status: 'ok' },
      ]);
      expect((await crm()).map((r) => r.email)).toEqual(['a@x', 'b@x']);
    });

    it('updates existing rows and deletes by key; missing rows are no error', async () => {
      await load('insert', [
        rec('1', { id: '1', email: 'a@x' }),
        rec('2', { id: '2', email: 'b@x' }),
        rec('3', { id: '3', email: 'c@x' }),
      ]);
      const up = await load('update', [
        rec('1', { email: 'a2@x' }, 'updated'),
        rec('2', { id: '2', email: 'b2@x', note: 'x' }, 'updated'),
        rec('404', { email: 'ghost@x' }, 'updated'),
      ]);
      expect(up).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      const del = await load('delete', [rec('3', null, 'deleted'), rec('99', null, 'deleted')]);
      expect(del).toEqual([{ status: 'ok' }, { status: 'ok' }]);
      expect((await crm()).map((r) => [r.id, r.email, r.note])).toEqual([
        ['1', 'a2@x', null],
        ['2', 'b2@x', 'x'],
      ]);
    });

    it('mirrors: upserts and deletes in one batch', async () => {
      await load('insert', [rec('1', { id: '1', email: 'a@x' }), rec('2', { id: '2', email: 'b@x' })]);
      const res = await load('mirror', [
        rec('1', null, 'deleted'),
        rec('2', { email: 'b3@x' }, 'updated'),
        rec('3', { email: 'c@x' }, 'added'),
      ]);
      expect(res).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
      expect((await crm()).map((r) => [r.id, r.email])).toEqual([
        ['2', 'b3@x'],
        ['3', 'c@x'],
      ]);
    });

    it('rejects a change its action cannot carry, and loads nothing for no records', async () => {
      expect(await load('upsert', [rec('1', null, 'deleted'), rec('2', { email: 'b@x' })])).toEqual([
        { status: 'rejected', code: 'unsupported_change', message: expect.stringContaining('deleted') },
        { status: 'ok' },
      ]);
      expect(await load('upsert', [])).toEqual([]);
    });

    it('stores every hostile value exactly, and quotes hostile table and column names', async () => {
      const unstorable = UNSTORABLE[ctx.name];
      const res = await load(
        'upsert',
        HOSTILE_NAMES.map((name) => rec(name, { v: HOSTILE[name] })),
        'hostile',
      );
      expect(res.map((r, i) => [HOSTILE_NAMES[i], r.status])).toEqual(
        HOSTILE_NAMES.map((name) => [name, unstorable.includes(name) ? 'rejected' : 'ok']),
      );
      const rows = await ctx.query('SELECT id, v FROM hostile');
      const got = Object.fromEntries(rows.map((r) => [String(r.id), r.v]));
      for (const name of HOSTILE_NAMES)
        if (!unstorable.includes(name)) expect([name, got[name]]).toEqual([name, HOSTILE[name]]);

      const odd = await load(
        'upsert',
        [rec("k'1", { 'Value;--': "v'); DROP TABLE crm; --" })],
        'Odd "Table"',
        'Key',
      );
      expect(odd).toEqual([{ status: 'ok' }]);
      expect(await ctx.query(`SELECT ${q('Key')}, ${q('Value;--')} FROM ${q('Odd "Table"')}`)).toEqual([
        { Key: "k'1", 'Value;--': "v'); DROP TABLE crm; --" },
      ]);
      expect(await ctx.query('SELECT count(*) AS n FROM crm')).toHaveLength(1);
    });

    it('checks the table, the key and the columns without writing', async () => {
      const check = (action: ActionName, table: string, key: string | undefined, fields: string[]) =>
        session.destination!.check!({ action, options: { table, ...(key ? { key } : {}) }, fields });
      expect(await check('upsert', 'crm', 'id', ['email', 'traits'])).toEqual([]);
      expect(await check('mirror', 'crm', 'id', ['email'])).toEqual([]);
      expect(await check('upsert', 'nope', 'id', ['email'])).toEqual([
        expect.objectContaining({ code: 'table_not_found', hint: expect.any(String) }),
      ]);
      expect(await check('upsert', 'crm', 'idd', ['emial'])).toEqual([
        expect.objectContaining({ code: 'key_column_not_found', hint: 'did you mean id?' }),
        expect.objectContaining({
          code: 'column_not_found',
          message: expect.stringContaining('emial'),
          hint: 'did you mean email?',
        }),
      ]);
      expect(await check('upsert', 'plain', 'id', ['email'])).toEqual([
        expect.objectContaining({ code: 'key_not_unique', hint: expect.stringMatching(/UNIQUE/i) }),
      ]);
      expect(await check('update', 'plain', 'id', ['email'])).toEqual([]);
      expect(await check('delete', 'plain', 'id', [])).toEqual([]);
      expect(await check('insert', 'plain', undefined, ['email'])).toEqual([]);
      expect(await crm()).toEqual([]);
    });

    it('fails the whole batch when the table, a column or the unique key is missing', async () => {
      const error = (p: Promise<unknown>) =>
        p.then(
          () => undefined,
          (e: unknown) => e,
        );
      const noTable = await error(load('upsert', [rec('1', { email: 'a@x' })], 'missing_table'));
      expect(noTable).toBeInstanceOf(ProviderError);
      expect(noTable).toMatchObject({ code: 'table_not_found', retryable: false });

      const noColumn = await error(load('upsert', [rec('1', { email: 'a@x', emial: 'typo' })]));
      expect(noColumn).toBeInstanceOf(ProviderError);
      expect(noColumn).toMatchObject({ code: 'column_not_found', message: expect.stringContaining('emial') });

      const notUnique = await error(load('upsert', [rec('1', { email: 'a@x' })], 'plain'));
      expect(notUnique).toBeInstanceOf(ProviderError);
      expect(notUnique).toMatchObject({
        code: 'key_not_unique',
        message: expect.stringContaining('unique index'),
      });
      expect(await crm()).toEqual([]);
      expect(await ctx.query('SELECT * FROM plain')).toEqual([]);
    });
  });
}
