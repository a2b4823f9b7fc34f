import type { SourcePosition } from '../diagnostics.js';

/**
 * Positions of the merged document's nodes, keyed by path (`mappings/users/fields/email`).
 * `key` is where the property name stands, `value` where its value starts; lookups fall back
 * to the nearest ancestor so every diagnostic gets a position.
 */
export class SourceMap {
  private readonly keys = new Map<string, SourcePosition>();
  private readonly values = new Map<string, SourcePosition>();

  setKey(path: readonly (string | number)[], pos: SourcePosition): void {
    this.keys.set(path.join('/'), pos);
  }

  setValue(path: readonly (string | number)[], pos: SourcePosition): void {
    this.values.set(path.join('/'), pos);
  }

  /** Position of the property name at `path` (or of the nearest ancestor). */
  key(path: readonly (string | number)[]): SourcePosition | undefined {
    return this.lookup(path, this.keys, this.values);
  }

  /** Position of the value at `path` (or of the nearest ancestor). */
  value(path: readonly (string | number)[]): SourcePosition | undefined {
    return this.lookup(path, this.values, this.keys);
  }

  merge(other: SourceMap, keep: (path: string) => boolean = () => true): void {
    for (const [k, v] of other.keys) if (keep(k)) this.keys.set(k, v);
    for (const [k, v] of other.values) if (keep(k)) this.values.set(k, v);
  }

  private lookup(
    path: readonly (string | number)[],
    first: Map<string, SourcePosition>,
    second: Map<string, SourcePosition>,
  ): SourcePosition | undefined {
    for (let n = path.length; n >= 0; n--) {
      const k = path.slice(0, n).join('/');
      const hit = first.get(k) ?? second.get(k);
      if (hit) return hit;
    }
    return undefined;
  }
}
