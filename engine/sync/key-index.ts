import { randomInt } from 'node:crypto';

/**
 * The diff's working set, in memory: for every snapshot key the fingerprint of its content hash,
 * and for every key of this run whether it was seen. A sync loads the mapping's snapshot into it once
 * (one sequential scan of the store), then answers each extracted row with no store round trip: new,
 * unchanged, changed, or a duplicate primary key. Deleted records are the snapshot keys never seen.
 *
 * Keys are kept as 64-bit fingerprints and content hashes as 32-bit ones (MurmurHash3 lanes with
 * seeds drawn for this run), in 256 open-addressing tables of typed arrays, each growing on its own
 * (so growing never holds two copies of the whole index): 9 bytes per slot, 13 when there is a
 * snapshot to compare with, at most three quarters of the slots used — 12 to 35 MB per million keys,
 * whatever the keys' length. Two different keys sharing a fingerprint (odds about n²/2⁶⁵, 3·10⁻⁸ for
 * a million keys), or a changed record whose new hash shares the old one's 32 bits (2⁻³² per changed
 * record), would be taken for the same in this run only: the next run draws new seeds and sees the
 * difference, so such an accident heals by itself one run later.
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

const SHARD_BITS = 8;
const SHARDS = 1 << SHARD_BITS;
/** A slot reference is shard * SLOT_SPAN + slot (a shard never reaches 2²⁴ slots below 4·10⁹ keys). */
const SLOT_SPAN = 1 << 24;

/** One open-addressing table (linear probing). */
class Shard {
  mask: number;
  size = 0;
  keyA: Uint32Array;
  keyB: Uint32Array;
  hash: Uint32Array | null;
  state: Uint8Array;

  constructor(capacity: number, withHash: boolean) {
    this.mask = capacity - 1;
    this.keyA = new Uint32Array(capacity);
    this.keyB = new Uint32Array(capacity);
    this.hash = withHash ? new Uint32Array(capacity) : null;
    this.state = new Uint8Array(capacity);
  }

  /** The slot holding (a, b), or the empty slot where it goes. */
  find(a: number, b: number): number {
    const { mask, state, keyA, keyB } = this;
    let slot = (b ^ Math.imul(a, 0x9e3779b1)) & mask;
    while (state[slot] !== EMPTY && (keyA[slot] !== a || keyB[slot] !== b)) slot = (slot + 1) & mask;
    return slot;
  }

  /** Puts (a, b) in its empty `slot`; returns the slot it ends in (it moves when the table grows). */
  put(slot: number, a: number, b: number, state: number): number {
    this.keyA[slot] = a;
    this.keyB[slot] = b;
    this.state[slot] = state;
    if (++this.size * 4 <= (this.mask + 1) * 3) return slot;
    this.grow();
    return this.find(a, b);
  }

  ensureHash(): void {
    this.hash ??= new Uint32Array(this.mask + 1);
  }

  private grow(): void {
    const { keyA, keyB, hash, state } = this;
    const capacity = (this.mask + 1) * 2;
    this.mask = capacity - 1;
    this.keyA = new Uint32Array(capacity);
    this.keyB = new Uint32Array(capacity);
    this.hash = hash ? new Uint32Array(capacity) : null;
    this.state = new Uint8Array(capacity);
    for (let i = 0; i < state.length; i++) {
      if (state[i] === EMPTY) continue;
      const slot = this.find(keyA[i]!, keyB[i]!);
      this.keyA[slot] = keyA[i]!;
      this.keyB[slot] = keyB[i]!;
      if (hash) this.hash![slot] = hash[i]!;
      this.state[slot] = state[i]!;
    }
  }
}

export class KeyIndex {
  private readonly seedA = randomInt(0, 2 ** 32);
  private readonly seedB = randomInt(0, 2 ** 32);
  private readonly shards: Shard[];
  private snapshotKeys = 0;
  private snapshotSeen = 0;

  /** `expected`: the snapshot's size, so the tables need not grow while loading it. */
  constructor(expected = 0) {
    let capacity = 16;
    while (capacity * SHARDS * 3 < expected * 4) capacity *= 2;
    this.shards = Array.from({ length: SHARDS }, () => new Shard(capacity, expected > 0));
  }

  /** Adds a snapshot entry (before any `see`). A key listed twice keeps its first hash. */
  addSnapshot(key: string, hash: string): void {
    this.lanes(key);
    this.#addSnapshotLanes(hash, 0, hash.length);
  }

  /**
   * Adds a page of the snapshot given as text (SnapshotText: `count` lines `key<TAB>hash`), hashing
   * keys and hashes where they lie in it. Returns false, having added nothing, when the text does not
   * hold exactly `count` lines of one tab each (a key with a tab or a newline): add those entries one
   * by one instead.
   */
  addSnapshotText(text: string, count: number): boolean {
    if (BOUNDS.length < 2 * count) BOUNDS = new Int32Array(2 * count);
    const bounds = BOUNDS;
    let start = 0;
    for (let n = 0; n < count; n++) {
      const tab = text.indexOf('\t', start);
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      if (tab === -1 || tab > end) return false;
      const more = text.indexOf('\t', tab + 1);
      if (more !== -1 && more < end) return false;
      bounds[2 * n] = tab;
      bounds[2 * n + 1] = end;
      if (end === text.length && n < count - 1) return false;
      start = end + 1;
    }
    if (start !== text.length + 1) return false;
    start = 0;
    for (let n = 0; n < count; n++) {
      const tab = bounds[2 * n]!;
      const end = bounds[2 * n + 1]!;
      murmur32x2(text, this.seedA, this.seedB, LANES, start, tab);
      this.#addSnapshotLanes(text, tab + 1, end);
      start = end + 1;
    }
    return true;
  }

  #addSnapshotLanes(hashText: string, hashStart: number, hashEnd: number): void {
    const a = LANES[0]!;
    const b = LANES[1]!;
    const shard = this.shards[a >>> (32 - SHARD_BITS)]!;
    let slot = shard.find(a, b);
    if (shard.state[slot] !== EMPTY) return;
    shard.ensureHash();
    slot = shard.put(slot, a, b, SNAPSHOT);
    murmur32x2(hashText, this.seedA, this.seedA, LANES, hashStart, hashEnd);
    shard.hash![slot] = LANES[0]!;
    this.snapshotKeys++;
  }

  /** Marks an extracted key seen and says what the snapshot knew of it. */
  see(key: string): Seen {
    this.lanes(key);
    const a = LANES[0]!;
    const b = LANES[1]!;
    const n = a >>> (32 - SHARD_BITS);
    const shard = this.shards[n]!;
    const slot = shard.find(a, b);
    switch (shard.state[slot]) {
      case EMPTY:
        shard.put(slot, a, b, NEW_SEEN);
        return NEW;
      case SNAPSHOT:
        shard.state[slot] = SNAPSHOT_SEEN;
        this.snapshotSeen++;
        return { kind: 'known', slot: n * SLOT_SPAN + slot };
      default:
        return DUPLICATE;
    }
  }

  /** Whether the snapshot's content hash at `slot` (from `see`) equals `hash`. */
  sameContent(slot: number, hash: string): boolean {
    const shard = this.shards[Math.floor(slot / SLOT_SPAN)]!;
    return shard.hash![slot % SLOT_SPAN] === murmur32(hash, this.seedA);
  }

  /** Marks a key seen without it being extracted (a deleted record this run handles). */
  touch(key: string): void {
    const [shard, slot] = this.locate(key);
    if (shard.state[slot] === SNAPSHOT) {
      shard.state[slot] = SNAPSHOT_SEEN;
      this.snapshotSeen++;
    }
  }

  /** Whether this run saw `key` (extracted, or handled as deleted). */
  wasSeen(key: string): boolean {
    const [shard, slot] = this.locate(key);
    const s = shard.state[slot];
    return s === SNAPSHOT_SEEN || s === NEW_SEEN;
  }

  /** Snapshot keys not seen: the records deleted from the model. */
  get unseen(): number {
    return this.snapshotKeys - this.snapshotSeen;
  }

  /** Whether `key` is a snapshot key this run has not seen. */
  isUnseenSnapshotKey(key: string): boolean {
    const [shard, slot] = this.locate(key);
    return shard.state[slot] === SNAPSHOT;
  }

  private locate(key: string): [Shard, number] {
    this.lanes(key);
    const a = LANES[0]!;
    const shard = this.shards[a >>> (32 - SHARD_BITS)]!;
    return [shard, shard.find(a, LANES[1]!)];
  }

  /** Both 32-bit lanes of a string's fingerprint, into LANES. */
  private lanes(s: string): void {
    murmur32x2(s, this.seedA, this.seedB, LANES);
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

/** Scratch for addSnapshotText: each line's tab and end. */
let BOUNDS = new Int32Array(2 * 10_000);

/**
 * murmur32 with two seeds in one pass over the string (or its code units [start, end), hashed as that
 * substring would be): `out[0]` with seedA, `out[1]` with seedB.
 */
export function murmur32x2(
  s: string,
  seedA: number,
  seedB: number,
  out: Uint32Array,
  start = 0,
  end = s.length,
): void {
  let h1 = seedA | 0;
  let h2 = seedB | 0;
  const n = end - start;
  const blocks = start + (n & ~1);
  for (let i = start; i < blocks; i += 2) {
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
    let k = s.charCodeAt(end - 1);
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
