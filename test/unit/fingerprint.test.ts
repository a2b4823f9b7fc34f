// Row fingerprints: MurmurHash3 x86_128 (seed 0) over a byte range, as base64url text.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint, murmur3x86_128 } from '../../providers/fingerprint.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf8 = (s: string) => Buffer.from(s, 'utf8');

/**
 * MurmurHash3_x86_128(key, len, seed 0) from the reference implementation (aappleby/smhasher
 * src/MurmurHash3.cpp, compiled with g++ and run on these inputs), the 16 output bytes as it writes them
 * on x86. "", "hello", "Hello, world!" and the pangram also appear, with these values, in the tests of
 * independent implementations (TypeScript, JavaScript, Go and C# murmur3 packages).
 */
const VECTORS: readonly [string | Buffer, string][] = [
  ['', '00000000000000000000000000000000'],
  ['a', '3c9394a71bb056551bb056551bb05655'],
  ['abc', 'd1c6cd75a506b0a2a506b0a2a506b0a2'],
  ['hello', 'a044242bf7de91dbb631db9ab631db9a'],
  ['Hello, world!', 'a7dbac26fc8d63f063422b40c3d4fd0a'],
  ['The quick brown fox jumps over the lazy dog', 'c383152f672ceeec6cf67b5d2c1de9e5'],
  // Every tail length class and block boundary: 1, 4, 5, 8, 9, 12, 13, 15, 16, 17, 31, 32, 33, 46 bytes.
  ['abcd', 'aaccb6962ec6af452ec6af452ec6af45'],
  ['abcde', 'fb2e40c5bcc5245d7701725a7701725a'],
  ['abcdefgh', '3611f4ae8714b1ad92806cfa92806cfa'],
  ['abcdefghi', '1c8c05ad6f590622107dd2147c4194dd'],
  ['abcdefghijkl', 'fe038573c02482f4addfd42753e58cd2'],
  ['abcdefghijklm', '15a23ac1eca1aedb66351cf470de2cd9'],
  ['abcdefghijklmno', '691d6deeaed51a4a5714ce84a861a7ad'],
  ['abcdefghijklmnop', '2776d29f5612b990218bcee445ba93d1'],
  ['abcdefghijklmnopq', 'd3a445046f5c51642adc6dd99d07111d'],
  ['abcdefghijklmnopqrstuvwxyz01234', '534e35101b0fd7451bf7c6132a2630b1'],
  ['abcdefghijklmnopqrstuvwxyz012345', '5230abdbdfe574d0eaad2e7f427f40c5'],
  ['abcdefghijklmnopqrstuvwxyz0123456', '8597c45e0596b07a403cd0ff6bb3c02e'],
  ['abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ', '7688a1de9152bb9c4f3e7180283e2258'],
  // Multi-byte UTF-8, and bytes with the high bit set in every lane position.
  ['Zoë — 日本語 🎉', '722b9238d4cef718df83a3447d601372'],
  [Buffer.alloc(1000, 0xff), 'd340ac9e94bace589a4c7b05f8a1c2a0'],
];

describe('murmur3x86_128', () => {
  it.each(VECTORS)('matches the reference implementation for %j', (input, expected) => {
    const bytes = typeof input === 'string' ? utf8(input) : input;
    expect(hex(murmur3x86_128(bytes))).toBe(expected);
  });
});

describe('fingerprint', () => {
  it('is the base64url text of the 128-bit digest, 22 characters', () => {
    for (const [input, expected] of VECTORS) {
      const bytes = typeof input === 'string' ? utf8(input) : input;
      const fp = fingerprint(bytes);
      expect(fp).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(fp).toBe(Buffer.from(expected, 'hex').toString('base64url'));
    }
    expect(fingerprint(new Uint8Array(0))).toBe('AAAAAAAAAAAAAAAAAAAAAA');
  });

  it('is stable: the same bytes give the same fingerprint, call after call', () => {
    const line = utf8('42\tuser42@example.com\t{"plan": "pro", "tags": ["a", "b"]}');
    const first = fingerprint(line);
    for (let i = 0; i < 1000; i++) expect(fingerprint(Buffer.from(line))).toBe(first);
    expect(first).toBe(fingerprint(new Uint8Array(line)));
  });

  it('hashes a range inside a larger buffer like the same bytes copied out', () => {
    const big = randomBytes(4096);
    // Every length 0..70 (all tail lengths, several blocks) at offsets that break word alignment.
    for (let len = 0; len <= 70; len++) {
      for (const start of [0, 1, 2, 3, 5, 17, 1000, 4096 - len]) {
        const copy = Buffer.from(big.subarray(start, start + len));
        expect(fingerprint(big, start, start + len)).toBe(fingerprint(copy));
        expect(hex(murmur3x86_128(big, start, start + len))).toBe(hex(murmur3x86_128(copy)));
      }
    }
    // A view with a byteOffset of its own (Buffer.subarray, a pooled small Buffer).
    const view = big.subarray(33, 133);
    expect(fingerprint(view, 7, 57)).toBe(fingerprint(Buffer.from(big.subarray(40, 90))));
    const pooled = Buffer.from('a small Buffer, usually a slice of the shared pool');
    expect(fingerprint(pooled)).toBe(fingerprint(new Uint8Array([...pooled])));
  });

  it('alternates between buffers without mixing them up', () => {
    const a = utf8('row one\twith some text that spans more than one block');
    const b = utf8('row two\twith some text that spans more than one block');
    const fa = fingerprint(a);
    const fb = fingerprint(b);
    expect(fa).not.toBe(fb);
    for (let i = 0; i < 10; i++) {
      expect(fingerprint(a)).toBe(fa);
      expect(fingerprint(b)).toBe(fb);
    }
  });

  it('tells different inputs apart, including one-bit and one-byte-longer changes', () => {
    const seen = new Set<string>();
    const base = utf8('1\tuser1@example.com\tUser 1\t2024-01-01 10:00:00+00\t{"plan": "pro"}');
    seen.add(fingerprint(base));
    for (let i = 0; i < base.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = Buffer.from(base);
        flipped[i]! ^= 1 << bit;
        seen.add(fingerprint(flipped));
      }
    }
    expect(seen.size).toBe(1 + base.length * 8);
    // Prefixes (the length is mixed in) and zero bytes of different counts all differ.
    const prefixes = new Set(Array.from({ length: base.length + 1 }, (_, n) => fingerprint(base, 0, n)));
    expect(prefixes.size).toBe(base.length + 1);
    const zeros = new Set(Array.from({ length: 40 }, (_, n) => fingerprint(new Uint8Array(n))));
    expect(zeros.size).toBe(40);
    // Empty text and a NULL differ as COPY lines: '' vs '\N'.
    expect(fingerprint(utf8('1\t'))).not.toBe(fingerprint(utf8('1\t\\N')));
    // 100,000 distinct rows, no collision.
    const many = new Set<string>();
    for (let g = 0; g < 100_000; g++) many.add(fingerprint(utf8(`${g}\tuser${g}@example.com`)));
    expect(many.size).toBe(100_000);
  });

  it('refuses a range outside the bytes', () => {
    const b = utf8('abc');
    expect(() => fingerprint(b, 0, 4)).toThrow(RangeError);
    expect(() => fingerprint(b, -1, 2)).toThrow(RangeError);
    expect(() => fingerprint(b, 2, 1)).toThrow(RangeError);
  });
});
