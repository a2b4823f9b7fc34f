import { describe, expect, it } from 'vitest';
import { KeyIndex, murmur32, murmur32x2 } from '../../engine/sync/key-index.js';

describe('murmur32', () => {
  it('matches MurmurHash3 x86_32 on ASCII input (two code units per block)', () => {
    // Reference values of MurmurHash3_x86_32 over the UTF-16LE bytes of the string.
    const ref = (s: string, seed: number) => {
      const bytes = Buffer.from(s, 'utf16le');
      let h = seed | 0;
      const blocks = bytes.length & ~3;
      for (let i = 0; i < blocks; i += 4) {
        let k = bytes.readUInt32LE(i);
        k = Math.imul(k, 0xcc9e2d51);
        k = (k << 15) | (k >>> 17);
        k = Math.imul(k, 0x1b873593);
        h ^= k;
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
      }
      let k = 0;
      const tail = bytes.length & 3;
      if (tail >= 3) k ^= bytes[blocks + 2]! << 16;
      if (tail >= 2) k ^= bytes[blocks + 1]! << 8;
      if (tail >= 1) {
        k ^= bytes[blocks]!;
        k = Math.imul(k, 0xcc9e2d51);
        k = (k << 15) | (k >>> 17);
        k = Math.imul(k, 0x1b873593);
        h ^= k;
      }
      h ^= bytes.length / 2; // the string variant mixes in the length in code units
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      return h >>> 0;
    };
    for (const s of ['', 'a', 'ab', 'abc', 'user-12345', 'Zoë 🎉', "O'Reilly\n\t"])
      for (const seed of [0, 1, 0xdeadbeef]) expect(murmur32(s, seed)).toBe(ref(s, seed));
    expect(murmur32('a', 1)).not.toBe(murmur32('a', 2));
    const out = new Uint32Array(2);
    for (const s of ['', 'a', 'user-12345', 'Zoë 🎉']) {
      murmur32x2(s, 7, 0xdeadbeef, out);
      expect([...out]).toEqual([murmur32(s, 7), murmur32(s, 0xdeadbeef)]);
    }
  });
});

describe('KeyIndex', () => {
  it('tells new, known, changed and duplicate keys apart, and counts the unseen', () => {
    const index = new KeyIndex();
    index.addSnapshot('a', 'ha');
    index.addSnapshot('b', 'hb');
    index.addSnapshot('c', 'hc');
    index.addSnapshot('a', 'ignored'); // a key listed twice keeps its first hash

    const a = index.see('a');
    expect(a.kind).toBe('known');
    if (a.kind === 'known') {
      expect(index.sameContent(a.slot, 'ha')).toBe(true);
      expect(index.sameContent(a.slot, 'ha2')).toBe(false);
    }
    expect(index.see('x')).toEqual({ kind: 'new' });
    expect(index.see('x')).toEqual({ kind: 'duplicate' });
    expect(index.see('a')).toEqual({ kind: 'duplicate' });
    expect(index.unseen).toBe(2);
    expect(index.isUnseenSnapshotKey('b')).toBe(true);
    expect(index.isUnseenSnapshotKey('a')).toBe(false);
    expect(index.isUnseenSnapshotKey('x')).toBe(false);

    index.touch('b');
    expect(index.unseen).toBe(1);
    expect(index.wasSeen('b')).toBe(true);
    expect(index.wasSeen('c')).toBe(false);
    expect(index.wasSeen('never')).toBe(false);
  });

  it('grows past its first table without losing an entry', () => {
    const index = new KeyIndex();
    const n = 50_000;
    for (let i = 0; i < n; i += 2) index.addSnapshot(`k${i}`, `h${i}`);
    for (let i = 0; i < n; i++) {
      const seen = index.see(`k${i}`);
      if (i % 2 === 0) {
        expect(seen.kind).toBe('known');
        if (seen.kind === 'known') expect(index.sameContent(seen.slot, `h${i}`)).toBe(true);
      } else expect(seen.kind).toBe('new');
    }
    expect(index.unseen).toBe(0);
    for (let i = 0; i < n; i += 997) expect(index.see(`k${i}`).kind).toBe('duplicate');
  });

  it('loads a snapshot page given as text exactly as entry by entry', () => {
    const entries: [string, string][] = [
      ['a', 'ha'],
      ['', 'h-empty'],
      ['"q"', 'hq'],
      ['Zoë 🎉', 'hz'],
      ['["1","x"]', 'hc'],
    ];
    const index = new KeyIndex();
    expect(index.addSnapshotText(entries.map(([k, h]) => `${k}\t${h}`).join('\n'), entries.length)).toBe(
      true,
    );
    expect(index.unseen).toBe(entries.length);
    for (const [key, hash] of entries) {
      const seen = index.see(key);
      expect(seen.kind).toBe('known');
      if (seen.kind === 'known') {
        expect(index.sameContent(seen.slot, hash)).toBe(true);
        expect(index.sameContent(seen.slot, `${hash}x`)).toBe(false);
      }
    }
    expect(index.see('h-empty').kind).toBe('new');
  });

  it('refuses a page whose text a tab or a newline in a key makes ambiguous, adding nothing', () => {
    const index = new KeyIndex();
    expect(index.addSnapshotText('a\tb\tha\nc\thc', 2)).toBe(false); // key "a\tb"
    expect(index.addSnapshotText('a\nb\tha\nc\thc', 2)).toBe(false); // key "a\nb"
    expect(index.addSnapshotText('a\tha\nc\thc', 3)).toBe(false); // fewer lines than said
    expect(index.addSnapshotText('a\tha\nc\thc\n', 2)).toBe(false); // more
    expect(index.addSnapshotText('a\tha\ncthc', 2)).toBe(false); // a line without a tab
    expect(index.unseen).toBe(0);
    expect(index.see('a').kind).toBe('new');
  });
});
