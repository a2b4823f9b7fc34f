import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../engine/errors.js';
import { type FileItem, formatOf, readProfiles } from '../../engine/segments/profile-files.js';
import { jsonSafe, profileKey, profileShaper, storedProfile } from '../../engine/segments/profiles.js';

async function file(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'backflow-profiles-'));
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function all(path: string): Promise<FileItem[]> {
  const out: FileItem[] = [];
  for await (const item of readProfiles({ path })) out.push(item);
  return out;
}

describe('profile files', () => {
  it('reads JSON Lines with line numbers, skipping blank lines and a BOM', async () => {
    const path = await file('p.jsonl', '\uFEFF{"CustomID": "c-1"}\n\n{"CustomID": 2, "Email": "a@b"}\r\n');
    expect(await all(path)).toEqual([
      { line: 1, profile: { CustomID: 'c-1' } },
      { line: 3, profile: { CustomID: 2, Email: 'a@b' } },
    ]);
  });

  it('names the line of a JSON Lines problem', async () => {
    const path = await file('p.jsonl', '{"CustomID": "a"}\n[1]\n{oops\n42\n');
    const items = await all(path);
    expect(items.filter((i) => 'message' in i).map((i) => i.line)).toEqual([2, 3, 4]);
    expect(items[1]).toMatchObject({ message: 'expected a JSON object, found an array' });
    expect((items[2] as { message: string }).message).toMatch(/^not valid JSON/);
  });

  it('reads CSV with a header, quoted fields spanning lines, doubled quotes, CRLF', async () => {
    const path = await file(
      'p.csv',
      'CustomID,Email\r\nc-1,a@b\r\n"c,2","say ""hi""\nthere"\r\nc-3,\r\nc-4,""\n',
    );
    expect(await all(path)).toEqual([
      { line: 2, profile: { CustomID: 'c-1', Email: 'a@b' } },
      { line: 3, profile: { CustomID: 'c,2', Email: 'say "hi"\nthere' } },
      { line: 5, profile: { CustomID: 'c-3', Email: null } },
      { line: 6, profile: { CustomID: 'c-4', Email: '' } },
    ]);
  });

  it('reports CSV rows with the wrong number of fields, and an unclosed quote', async () => {
    const wrong = await all(await file('p.csv', 'CustomID,Email\nc-1\nc-2,x,y\n'));
    expect(wrong).toEqual([
      { line: 2, message: '1 fields, but the header row has 2' },
      { line: 3, message: '3 fields, but the header row has 2' },
    ]);
    expect(await all(await file('q.csv', 'CustomID\n"open\n'))).toEqual([
      { line: 2, message: 'a quoted field is never closed' },
    ]);
  });

  it('tells the format from the name, and refuses a name it cannot read', () => {
    expect(formatOf('a.CSV')).toBe('csv');
    expect(formatOf('a.ndjson')).toBe('jsonl');
    expect(() => readProfiles({ path: 'a.txt' })).toThrow(UserError);
  });
});

describe('profiles', () => {
  it('needs a string or number key', () => {
    expect(profileKey({ CustomID: 'a' }, 'CustomID')).toEqual({ key: 'a' });
    expect(profileKey({ CustomID: 7 }, 'CustomID')).toEqual({ key: '7' });
    expect(profileKey({ CustomID: '' }, 'CustomID')).toEqual({ key: '' });
    expect(profileKey({}, 'CustomID')).toHaveProperty('problem');
    expect(profileKey({ CustomID: null }, 'CustomID')).toHaveProperty('problem');
    expect(profileKey({ CustomID: { a: 1 } }, 'CustomID')).toHaveProperty('problem');
  });

  it('keeps the key and declared fields of a managed segment, every column of a model-backed one', () => {
    const managed = { id: 1, name: 'n', key: 'CustomID', members: 'managed' as const, fields: ['Email'] };
    const p = storedProfile({ CustomID: 'a', Email: 'e', Secret: 's' }, managed);
    expect(p.ok && JSON.parse(p.value.json)).toEqual({ CustomID: 'a', Email: 'e' });
    const model = { id: 1, name: 'n', key: 'id', members: { model: 'm' } };
    const q = storedProfile({ id: 10n, at: new Date('2026-01-01T00:00:00Z'), big: 2n ** 64n }, model);
    expect(q.ok && JSON.parse(q.value.json)).toEqual({
      id: 10,
      at: '2026-01-01T00:00:00.000Z',
      big: '18446744073709551616',
    });
    expect(q.ok && q.value.key).toBe('10');
  });

  it("stores a managed profile's kept fields as JSON, whatever their values", () => {
    const fields = ['Email', '10', 'CustomID', '2', 'nested', 'when', 'big', 'gone', 'fn', 'text'];
    const segment = { id: 1, name: 'n', key: 'CustomID', members: 'managed' as const, fields };
    const values: unknown[] = [
      'plain',
      'quote " backslash \\ newline \n tab \t',
      'unicode é 漢字 😀 \u2028',
      '\ud800 lone surrogate',
      0,
      -1.5,
      1e21,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      true,
      null,
      undefined,
      12n,
      2n ** 70n,
      new Date('2026-02-03T04:05:06.789Z'),
      new Date(Number.NaN),
      new Uint8Array([0, 255, 16]),
      { a: [1, 'x', { b: null }] },
      [],
      () => 1,
      Symbol('s'),
    ];
    const shape = profileShaper(segment);
    for (const [i, v] of values.entries()) {
      for (const omit of [false, true]) {
        const raw: Record<string, unknown> = { CustomID: i % 2 ? `k${i}` : i, Other: 'dropped' };
        for (const [j, f] of fields.entries())
          if (!(omit && j % 3 === i % 3) && f !== 'CustomID') raw[f] = values[(i + j) % values.length];
        raw.when = v;
        // What the shaper replaced: an object of the kept fields (key first), JSON-safe values, stringified.
        const object: Record<string, unknown> = {};
        for (const f of ['CustomID', ...fields]) if (Object.hasOwn(raw, f)) object[f] = jsonSafe(raw[f]);
        const p = shape(raw);
        expect(typeof p === 'string' ? p : p.json).toBe(JSON.stringify(object));
      }
    }
    expect(shape({ Email: 'x' })).toMatch(/has no "CustomID"/);
    expect(shape({ CustomID: true })).toMatch(/must be a string or a number/);
  });
});
