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

const SOURCE_TEXT = Symbol('backflow.jsonSourceText');

/**
 * JSON.parse that remembers the text an object or array came from (a hidden, non-enumerable
 * property): a destination writing the value back as JSON can send that text instead of
 * serialising it again. backflow never mutates values it read, so the text stays true.
 */
export function parseJsonKeepingText(text: string): unknown {
  const value: unknown = JSON.parse(text);
  if (value !== null && typeof value === 'object') {
    TEXT.value = text;
    Object.defineProperty(value, SOURCE_TEXT, TEXT);
  }
  return value;
}

/** One descriptor reused (non-enumerable, read-only): no allocation per value. */
const TEXT: PropertyDescriptor = { value: '', enumerable: false, writable: false, configurable: false };

/** The JSON text `value` was parsed from by parseJsonKeepingText, if it was. */
export function jsonSourceText(value: object): string | undefined {
  return (value as { [SOURCE_TEXT]?: string })[SOURCE_TEXT];
}
