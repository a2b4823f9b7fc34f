/** A problem in the user's input, collected (never thrown) and printed as `FILE:LINE:COL: error: MESSAGE`. */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  /** Stable machine code, e.g. `unknown_field`, `missing_reference`. */
  readonly code: string;
  /** One line saying what is wrong. */
  readonly summary: string;
  /** What to do about it (a hint such as "did you mean `primary_key`?"). */
  readonly detail?: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** Resource address (`mapping.users_to_crm`) when the problem belongs to one. */
  readonly address?: string;
}

/** Where a node of the merged document came from. */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** `FILE:LINE:COL: error: MESSAGE (detail)` — the format editors and CI annotators understand. */
export function formatDiagnostic(d: Diagnostic, cwd = process.cwd()): string {
  const where = d.file
    ? `${relativeTo(cwd, d.file)}:${d.line ?? 1}:${d.column ?? 1}: `
    : d.address
      ? `${d.address}: `
      : '';
  const detail = d.detail ? `\n  ${d.detail.replace(/\n/g, '\n  ')}` : '';
  return `${where}${d.severity}: ${d.summary}${detail}`;
}

function relativeTo(cwd: string, file: string): string {
  return file.startsWith(`${cwd}/`) ? file.slice(cwd.length + 1) : file;
}

/** Levenshtein-based suggestion for "did you mean" hints. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const score = editDistance(word, c);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
