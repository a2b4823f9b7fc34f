/**
 * JSON text for what leaves backflow as JSON (webhook payloads, file lines): a bigint becomes its
 * decimal string (a JS receiver would lose digits of a number) and bytes become base64, the same
 * conventions as the content hash.
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer);
}

function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  // Buffer.toJSON has already run on `value`; the holder still has the original.
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array) {
    return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64');
  }
  return value;
}
