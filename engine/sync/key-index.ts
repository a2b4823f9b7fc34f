import { randomInt } from 'node:crypto';

/**
 * The diff's working set, in memory: for every snapshot key the 64-bit fingerprint of its content
 * hash, and for every key of this run whether it was seen. A sync loads the mapping's snapshot into
 * it once (one sequential scan of the store), then answers each extracted row with no store round
 * trip: new, unchanged, changed, or a duplicate primary key. Deleted records are the snapshot keys
 * never seen.
 *
 * Keys are kept as 64-bit fingerprints and content hashes as 32-bit ones (MurmurHash3 lanes with
 * seeds drawn for this run), in an open-addressing table of typed arrays: 13 bytes per slot, at most
 * three quarters of the slots used — 17 to 35 MB for a million keys, whatever the keys' length. Two
 * different keys sharing a fingerprint (odds about n²/2⁶⁵, 3·10⁻⁸ for a million keys), or a changed
 * record whose new hash shares the old one's 32 bits (2⁻³² per changed record), would be taken for
 * the same in this run only: the next run draws new seeds and sees the difference, so such an
 * accident heals by itself one run later.
 */

const EMPTY = 0;
/** In the snapshot, not (yet) seen by this run. */
const SNAPSHOT = 1;
/** In the snapshot and seen by this run. */
const SNAPSHOT_SEEN = 2;
/** Not in the snapshot, seen by this run. */
const NEW_SEEN = 3;

/** What `see` found for an extracted key. */
export type Seen =
  /** The key was already seen in this run. */
  | { readonly kind: 'duplicate' }
  /** Not in the snapshot: a new record. */
  | { readonly kind: 'new' }
  /** In the snapshot; `slot` answers `sameContent`. */
  | { readonly kind: 'known'; readonly slot: number };

/** Scratch output of murmur32x2 (single-threaded: no allocation per call). */
const LANES = new Uint32Array(2);

const DUPLICATE: Seen = Object.freeze({ kind: 'duplicate' });
const NEW: Seen = Object.freeze({ kind: 'new' });

export class KeyIndex {
  private readonly seedA = randomInt(0, 2 ** 32);
  private readonly seedB = randomInt(0, 2 ** 32);
  private capacity: number;
  private size = 0;
  private snapshotKeys = 0;
  private snapshotSeen = 0;
  private keyA: Uint32Array;
  private keyB: Uint32Array;
  private hash: Uint32Array;
  private state: Uint8Array;

  /** `expected`: the number of keys foreseen (the snapshot's size), so the table need not grow while loading it. */
  constructor(expected = 0) {
    this.capacity = 1 << 12;
    while (this.capacity * 3 < expected * 4) this.capacity *= 2;
    this.keyA = new Uint32Array(this.capacity);
    this.keyB = new Uint32Array(this.capacity);
    this.hash = new Uint32Array(this.capacity);
    this.state = new Uint8Array(this.capacity);
  }

  /** Adds a snapshot entry (before any `see`). A key listed twice keeps its first hash. */
  addSnapshot(key: string, hash: string): void {
    this.lanes(key);
    const a = LANES[0]!;
    const b = LANES[1]!;
    const slot = this.find(a, b);
    if (this.state[slot] !== EMPTY) return;
    this.put(slot, a, b, SNAPSHOT);
    this.hash[slot] = murmur32(hash, this.seedA);
    this.snapshotKeys++;
    this.grow();
  }

  /** Marks an extracted key seen and says what the snapshot knew of it. */
  see(key: string): Seen {
    this.lanes(key);
    const a = LANES[0]!;
    const b = LANES[1]!;
    const slot = this.find(a, b);
    switch (this.state[slot]) {
      case EMPTY:
        this.put(slot, a, b, NEW_SEEN);
        this.grow();
        return NEW;
      case SNAPSHOT:
        this.state[slot] = SNAPSHOT_SEEN;
        this.snapshotSeen++;
        return { kind: 'known', slot };
      default:
        return DUPLICATE;
    }
  }

  /** Whether the snapshot's content hash at `slot` (from `see`) equals `hash`. */
  sameContent(slot: number, hash: string): boolean {
    return this.hash[slot] === murmur32(hash, this.seedA);
  }

  /** Marks a key seen without it being extracted (a deleted record this run handles). */
  touch(key: string): void {
    const slot = this.slotOf(key);
    if (this.state[slot] === SNAPSHOT) {
      this.state[slot] = SNAPSHOT_SEEN;
      this.snapshotSeen++;
    }
  }

  /** Whether this run saw `key` (extracted, or handled as deleted). */
  wasSeen(key: string): boolean {
    const s = this.state[this.slotOf(key)];
    return s === SNAPSHOT_SEEN || s === NEW_SEEN;
  }

  /** Snapshot keys not seen: the records deleted from the model. */
  get unseen(): number {
    return this.snapshotKeys - this.snapshotSeen;
  }

  /** Whether `key` is a snapshot key this run has not seen. */
  isUnseenSnapshotKey(key: string): boolean {
    return this.state[this.slotOf(key)] === SNAPSHOT;
  }

  private slotOf(key: string): number {
    this.lanes(key);
    return this.find(LANES[0]!, LANES[1]!);
  }

  /** Both 32-bit lanes of a string's fingerprint, into LANES. */
  private lanes(s: string): void {
    murmur32x2(s, this.seedA, this.seedB, LANES);
  }

  /** The slot holding (a, b), or the empty slot where it goes (linear probing). */
  private find(a: number, b: number): number {
    const mask = this.capacity - 1;
    let slot = (a ^ Math.imul(b, 0x9e3779b1)) & mask;
    while (this.state[slot] !== EMPTY && (this.keyA[slot] !== a || this.keyB[slot] !== b))
      slot = (slot + 1) & mask;
    return slot;
  }

  private put(slot: number, a: number, b: number, state: number): void {
    this.keyA[slot] = a;
    this.keyB[slot] = b;
    this.state[slot] = state;
    this.size++;
  }

  /** Doubles the table once it is three quarters full. */
  private grow(): void {
    if (this.size * 4 <= this.capacity * 3) return;
    const { keyA, keyB, hash, state } = this;
    this.capacity *= 2;
    this.keyA = new Uint32Array(this.capacity);
    this.keyB = new Uint32Array(this.capacity);
    this.hash = new Uint32Array(this.capacity);
    this.state = new Uint8Array(this.capacity);
    for (let i = 0; i < state.length; i++) {
      if (state[i] === EMPTY) continue;
      const slot = this.find(keyA[i]!, keyB[i]!);
      this.keyA[slot] = keyA[i]!;
      this.keyB[slot] = keyB[i]!;
      this.hash[slot] = hash[i]!;
      this.state[slot] = state[i]!;
    }
  }
}

/**
 * MurmurHash3 (x86, 32-bit) over a string's UTF-16 code units, two per block. Not for security:
 * seeded per run, it spreads keys and catches changed hashes; equal strings always agree.
 */
export function murmur32(s: string, seed: number): number {
  murmur32x2(s, seed, seed, ONE);
  return ONE[0]!;
}

const ONE = new Uint32Array(2);

/** murmur32 with two seeds in one pass over the string: `out[0]` with seedA, `out[1]` with seedB. */
export function murmur32x2(s: string, seedA: number, seedB: number, out: Uint32Array): void {
  let h1 = seedA | 0;
  let h2 = seedB | 0;
  const n = s.length;
  const blocks = n & ~1;
  for (let i = 0; i < blocks; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h1 ^= k;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    h2 ^= k;
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = (Math.imul(h2, 5) + 0xe6546b64) | 0;
  }
  if (n & 1) {
    let k = s.charCodeAt(n - 1);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h1 ^= k;
    h2 ^= k;
  }
  out[0] = fmix(h1 ^ n);
  out[1] = fmix(h2 ^ n);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
