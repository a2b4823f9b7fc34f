import { describe, expect, it } from 'vitest';
import { canonicalJson, hashRecord, idempotencyKey, recordKey } from '../../engine/sync/hash.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 2 } })).toBe(
      '{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}',
    );
  });

  it('writes bigint as a decimal string, Date as ISO, bytes as base64, and drops undefined', () => {
    expect(
      canonicalJson({
        big: 12345678901234567890n,
        at: new Date('2024-01-02T03:04:05.678Z'),
        bytes: Buffer.from('hi'),
        gone: undefined,
        list: [undefined, 1],
      }),
    ).toBe('{"at":"2024-01-02T03:04:05.678Z","big":"12345678901234567890","bytes":"aGk=","list":[null,1]}');
  });

  it('escapes strings and keys like JSON, and writes non-finite numbers as null', () => {
    expect(canonicalJson({ 'a"b': 'x\ny', n: Number.NaN, i: Number.POSITIVE_INFINITY })).toBe(
      '{"a\\"b":"x\\ny","i":null,"n":null}',
    );
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson(new Date(Number.NaN))).toBe('null');
  });

  it('writes every string exactly as JSON does', () => {
    const strings = [
      'plain',
      'q"uote',
      'back\\slash',
      'tab\tnl\n\u0000\u001f',
      'émoji 😀',
      'lone \ud800',
      '\udfff',
      '\u2028',
    ];
    for (const s of strings) {
      expect(canonicalJson(s)).toBe(JSON.stringify(s));
      expect(canonicalJson({ [s]: s })).toBe(JSON.stringify({ [s]: s }));
    }
    expect(canonicalJson([0, -0, 1.5, 1e21, -2e-7])).toBe(JSON.stringify([0, -0, 1.5, 1e21, -2e-7]));
  });

  it('uses toJSON of other objects', () => {
    const decimal = { toJSON: () => '1.50' };
    expect(canonicalJson({ d: decimal })).toBe('{"d":"1.50"}');
  });
});

describe('hashRecord', () => {
  it('is the same for the same content in any key order', () => {
    expect(hashRecord({ a: 1, b: { c: 2, d: 3 } })).toBe(hashRecord({ b: { d: 3, c: 2 }, a: 1 }));
  });

  it('changes with the content', () => {
    expect(hashRecord({ a: 1 })).not.toBe(hashRecord({ a: 2 }));
    expect(hashRecord({ a: 1 })).not.toBe(hashRecord({ a: '1' }));
    expect(hashRecord({ a: null })).not.toBe(hashRecord({}));
    expect(hashRecord(null)).not.toBe(hashRecord({}));
  });

  it('is short url-safe text', () => {
    expect(hashRecord({ a: 1 })).toMatch(/^[A-Za-z0-9_-]{27}$/);
  });
});

describe('idempotencyKey', () => {
  it('is stable per mapping, key and content', () => {
    const h = hashRecord({ email: 'a@x.io' });
    expect(idempotencyKey('users', '1', h)).toBe(idempotencyKey('users', '1', h));
    expect(idempotencyKey('users', '1', h)).not.toBe(idempotencyKey('users', '2', h));
    expect(idempotencyKey('users', '1', h)).not.toBe(idempotencyKey('other', '1', h));
    expect(idempotencyKey('users', '1', h)).not.toBe(
      idempotencyKey('users', '1', hashRecord({ email: 'b' })),
    );
  });

  it('does not collide when parts run into each other', () => {
    expect(idempotencyKey('ab', 'c', 'h')).not.toBe(idempotencyKey('a', 'bc', 'h'));
  });
});

describe('recordKey', () => {
  it('gives a single key as its text; numbers, bigints and strings with the same digits agree', () => {
    expect(recordKey({ id: 42 }, 'id')).toEqual({ ok: true, key: '42' });
    expect(recordKey({ id: 42n }, 'id')).toEqual({ ok: true, key: '42' });
    expect(recordKey({ id: '42' }, ['id'])).toEqual({ ok: true, key: '42' });
    expect(recordKey({ id: 'a@x.io' }, 'id')).toEqual({ ok: true, key: 'a@x.io' });
    expect(recordKey({ id: true }, 'id')).toEqual({ ok: true, key: 'true' });
    expect(recordKey({ id: new Date('2024-01-02T00:00:00Z') }, 'id')).toEqual({
      ok: true,
      key: '2024-01-02T00:00:00.000Z',
    });
    expect(recordKey({ id: Buffer.from([1, 255]) }, 'id')).toEqual({ ok: true, key: '01ff' });
  });

  it('gives a composite key as a JSON array of texts', () => {
    expect(recordKey({ org: 7, user: 'u"1', x: 0 }, ['org', 'user'])).toEqual({
      ok: true,
      key: '["7","u\\"1"]',
    });
    expect(recordKey({ org: '7', user: 'u"1' }, ['org', 'user'])).toEqual(
      recordKey({ org: 7n, user: 'u"1' }, ['org', 'user']),
    );
  });

  it('refuses a NULL or missing key column, naming it', () => {
    expect(recordKey({ id: null }, 'id')).toMatchObject({ ok: false, code: 'null_primary_key' });
    expect(recordKey({ org: 1, user: null }, ['org', 'user'])).toMatchObject({
      ok: false,
      code: 'null_primary_key',
      message: expect.stringContaining('`user`'),
    });
    expect(recordKey({ email: 'x' }, 'id')).toMatchObject({
      ok: false,
      code: 'missing_primary_key',
      message: expect.stringContaining('`id`'),
    });
  });
});
