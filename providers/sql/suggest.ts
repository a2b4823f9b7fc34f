/** "Did you mean" hints from a table's columns, for check problems. */

/** A "did you mean" hint from the table's columns (edit distance ≤ 2, or a case-only difference). */
export function suggest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0 : distance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best !== undefined) return `did you mean ${best}?`;
  return candidates.length ? `the table's columns: ${candidates.join(', ')}` : undefined;
}

/**
 * A "did you mean" hint from the table's columns by a case-only difference or a shared
 * three-character prefix (what the ClickHouse and MSSQL destinations have always said).
 */
export function suggestByPrefix(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const close =
    candidates.find((c) => c.toLowerCase() === lower) ??
    candidates.find((c) => c.toLowerCase().startsWith(lower.slice(0, 3)));
  if (close !== undefined) return `did you mean ${close}?`;
  return candidates.length ? `the table's columns: ${candidates.join(', ')}` : undefined;
}

/** `{ hint }` when there is one, `{}` otherwise (for spreading into a CheckProblem). */
export function hint(text: string | undefined): { hint?: string } {
  return text === undefined ? {} : { hint: text };
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
