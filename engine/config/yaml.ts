import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { Diagnostic } from '../diagnostics.js';
import type { ParsedFile } from './parsed-file.js';
import { SourceMap } from './source-map.js';

/** Parses one YAML file into a plain document and the positions of its nodes. */
export function parseYaml(file: string, text: string): ParsedFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, intAsBigInt: false });
  const map = new SourceMap();
  const diagnostics: Diagnostic[] = [];
  const pos = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  for (const error of [...doc.errors, ...doc.warnings]) {
    const at = pos(error.pos[0]);
    diagnostics.push({
      severity: doc.errors.includes(error as never) ? 'error' : 'warning',
      code: 'yaml_syntax',
      summary: `YAML ${error.code === 'DUPLICATE_KEY' ? 'duplicate key' : 'syntax error'}: ${firstLine(error.message)}`,
      ...at,
    });
  }
  if (doc.errors.length > 0) return { file, data: undefined, map, diagnostics };

  const walk = (node: Node | null | undefined, path: (string | number)[]) => {
    if (!node) return;
    if (node.range) map.setValue(path, pos(node.range[0]));
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const child = [...path, key];
        if (keyNode?.range) map.setKey(child, pos(keyNode.range[0]));
        walk(pair.value as Node | null, child);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        walk(item as Node, [...path, i]);
      });
    }
  };
  walk(doc.contents as Node | null, []);

  const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (data !== null && data !== undefined && (typeof data !== 'object' || Array.isArray(data))) {
    diagnostics.push({
      severity: 'error',
      code: 'invalid_document',
      summary: 'a config file must be a mapping of sections (sources, models, destinations, mappings, …)',
      file,
      line: 1,
      column: 1,
    });
    return { file, data: undefined, map, diagnostics };
  }
  return { file, data: (data ?? {}) as Record<string, unknown>, map, diagnostics };
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
