/**
 * Row fingerprints: MurmurHash3 x86_128 (seed 0) over a byte range, as 22 characters of base64url.
 *
 * Not cryptographic, and not meant to be: a fingerprint only tells a source's row text apart from the
 * text the same key had at the last load, so it needs to be fast and well mixed, not collision-proof
 * against an adversary (128 bits make an accidental collision negligible). It reads the bytes where they
 * are (a row inside a whole batch of COPY text), without copying, with 32-bit integer arithmetic only
 * (Math.imul), and costs a fraction of node's `crypto.hash('sha1', …)` per call, whose fixed overhead
 * dominates at row sizes.
 *
 * The 16 output bytes are h1…h4 little-endian, as the reference implementation writes them on x86, so a
 * fingerprint is the base64url text of what `MurmurHash3_x86_128(bytes, len, 0, out)` returns.
 */

const C1 = 0x239b961b;
const C2 = 0xab0e9789 | 0;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93 | 0;

/** h1…h4 of the last hash (one shared scratch: the functions here are synchronous). */
const OUT = new Int32Array(4);

/**
 * A DataView over the last buffer hashed: the body reads whole little-endian words through it (about
 * twice as fast as assembling them from bytes). Rows of one batch share a buffer, so it is made once
 * per batch; it keeps at most that one buffer alive.
 */
let viewed: Uint8Array | undefined;
let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/** MurmurHash3_x86_128 of `bytes[start, end)`, seed 0, into OUT. */
function hash(bytes: Uint8Array, start: number, end: number): void {
  if (start < 0 || end > bytes.length || start > end)
    throw new RangeError(`fingerprint: range [${start}, ${end}) outside 0…${bytes.length}`);
  const len = end - start;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  let k1 = 0;
  let k2 = 0;
  let k3 = 0;
  let k4 = 0;
  let p = start;
  const blocksEnd = start + (len & ~15);
  if (blocksEnd > start && bytes !== viewed) {
    view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    viewed = bytes;
  }
  const dv = view;
  while (p < blocksEnd) {
    k1 = dv.getInt32(p, true);
    k2 = dv.getInt32(p + 4, true);
    k3 = dv.getInt32(p + 8, true);
    k4 = dv.getInt32(p + 12, true);
    p += 16;

    k1 = Math.imul(k1, C1);
    k1 = (k1 << 15) | (k1 >>> 17);
    h1 ^= Math.imul(k1, C2);
    h1 = (h1 << 19) | (h1 >>> 13);
    h1 = (h1 + h2) | 0;
    h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;

    k2 = Math.imul(k2, C2);
    k2 = (k2 << 16) | (k2 >>> 16);
    h2 ^= Math.imul(k2, C3);
    h2 = (h2 << 17) | (h2 >>> 15);
    h2 = (h2 + h3) | 0;
    h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;

    k3 = Math.imul(k3, C3);
    k3 = (k3 << 17) | (k3 >>> 15);
    h3 ^= Math.imul(k3, C4);
    h3 = (h3 << 15) | (h3 >>> 17);
    h3 = (h3 + h4) | 0;
    h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;

    k4 = Math.imul(k4, C4);
    k4 = (k4 << 18) | (k4 >>> 14);
    h4 ^= Math.imul(k4, C1);
    h4 = (h4 << 13) | (h4 >>> 19);
    h4 = (h4 + h1) | 0;
    h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
  }

  // Tail: the reference's fall-through switch, lane by lane.
  const rest = len & 15;
  if (rest > 12) {
    k4 = 0;
    if (rest >= 15) k4 ^= bytes[p + 14]! << 16;
    if (rest >= 14) k4 ^= bytes[p + 13]! << 8;
    k4 ^= bytes[p + 12]!;
    k4 = Math.imul(k4, C4);
    k4 = (k4 << 18) | (k4 >>> 14);
    h4 ^= Math.imul(k4, C1);
  }
  if (rest > 8) {
    k3 = 0;
    if (rest >= 12) k3 ^= bytes[p + 11]! << 24;
    if (rest >= 11) k3 ^= bytes[p + 10]! << 16;
    if (rest >= 10) k3 ^= bytes[p + 9]! << 8;
    k3 ^= bytes[p + 8]!;
    k3 = Math.imul(k3, C3);
    k3 = (k3 << 17) | (k3 >>> 15);
    h3 ^= Math.imul(k3, C4);
  }
  if (rest > 4) {
    k2 = 0;
    if (rest >= 8) k2 ^= bytes[p + 7]! << 24;
    if (rest >= 7) k2 ^= bytes[p + 6]! << 16;
    if (rest >= 6) k2 ^= bytes[p + 5]! << 8;
    k2 ^= bytes[p + 4]!;
    k2 = Math.imul(k2, C2);
    k2 = (k2 << 16) | (k2 >>> 16);
    h2 ^= Math.imul(k2, C3);
  }
  if (rest > 0) {
    k1 = 0;
    if (rest >= 4) k1 ^= bytes[p + 3]! << 24;
    if (rest >= 3) k1 ^= bytes[p + 2]! << 16;
    if (rest >= 2) k1 ^= bytes[p + 1]! << 8;
    k1 ^= bytes[p]!;
    k1 = Math.imul(k1, C1);
    k1 = (k1 << 15) | (k1 >>> 17);
    h1 ^= Math.imul(k1, C2);
  }

  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  OUT[0] = h1;
  OUT[1] = h2 + h1;
  OUT[2] = h3 + h1;
  OUT[3] = h4 + h1;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b | 0);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35 | 0);
  return h ^ (h >>> 16);
}

/** base64url alphabet as character codes. */
const B64 = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c) =>
  c.charCodeAt(0),
);

/**
 * The fingerprint of `bytes[start, end)` (default: all of it): MurmurHash3 x86_128, seed 0, as 22
 * characters of unpadded base64url. The same bytes give the same text wherever they sit in memory.
 */
export function fingerprint(bytes: Uint8Array, start = 0, end: number = bytes.length): string {
  hash(bytes, start, end);
  const a = OUT[0]!;
  const b = OUT[1]!;
  const c = OUT[2]!;
  const d = OUT[3]!;
  // The 16 bytes, little-endian per word, as five 24-bit groups plus one byte.
  const g0 = ((a & 0xff) << 16) | (a & 0xff00) | ((a >>> 16) & 0xff);
  const g1 = ((a >>> 24) << 16) | ((b & 0xff) << 8) | ((b >>> 8) & 0xff);
  const g2 = (((b >>> 16) & 0xff) << 16) | ((b >>> 24) << 8) | (c & 0xff);
  const g3 = (((c >>> 8) & 0xff) << 16) | (((c >>> 16) & 0xff) << 8) | (c >>> 24);
  const g4 = ((d & 0xff) << 16) | (d & 0xff00) | ((d >>> 16) & 0xff);
  const last = d >>> 24;
  return String.fromCharCode(
    B64[g0 >>> 18]!,
    B64[(g0 >>> 12) & 63]!,
    B64[(g0 >>> 6) & 63]!,
    B64[g0 & 63]!,
    B64[g1 >>> 18]!,
    B64[(g1 >>> 12) & 63]!,
    B64[(g1 >>> 6) & 63]!,
    B64[g1 & 63]!,
    B64[g2 >>> 18]!,
    B64[(g2 >>> 12) & 63]!,
    B64[(g2 >>> 6) & 63]!,
    B64[g2 & 63]!,
    B64[g3 >>> 18]!,
    B64[(g3 >>> 12) & 63]!,
    B64[(g3 >>> 6) & 63]!,
    B64[g3 & 63]!,
    B64[g4 >>> 18]!,
    B64[(g4 >>> 12) & 63]!,
    B64[(g4 >>> 6) & 63]!,
    B64[g4 & 63]!,
    B64[last >>> 2]!,
    B64[(last & 3) << 4]!,
  );
}

/** The raw 16-byte MurmurHash3 x86_128 digest of `bytes[start, end)` (seed 0), as the reference writes it. */
export function murmur3x86_128(bytes: Uint8Array, start = 0, end: number = bytes.length): Uint8Array {
  hash(bytes, start, end);
  const out = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const h = OUT[i]!;
    out[i * 4] = h & 0xff;
    out[i * 4 + 1] = (h >>> 8) & 0xff;
    out[i * 4 + 2] = (h >>> 16) & 0xff;
    out[i * 4 + 3] = h >>> 24;
  }
  return out;
}

/** Where fingerprintText encodes a text to hash it (one at a time, synchronously). */
const SCRATCH = Buffer.allocUnsafe(64 * 1024);

/** The fingerprint of a text's UTF-8 bytes (encoded once into a shared scratch buffer). */
export function fingerprintText(text: string): string {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit: a text that might not fit gets its own buffer.
  if (text.length * 3 > SCRATCH.length) return fingerprint(Buffer.from(text, 'utf8'));
  return fingerprint(SCRATCH, 0, SCRATCH.write(text, 0, 'utf8'));
}
