import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { dialects } from '../../engine/segments/dialects.js';
import {
  type Profile,
  parseTemplate,
  renderTemplate,
  type Template,
  type TemplateError,
  templateFields,
} from '../../engine/segments/template.js';
import { dialect as mssql } from '../../providers/mssql/dialect.js';
import { dialect as mysql } from '../../providers/mysql/dialect.js';
import { dialect as postgres } from '../../providers/postgres/dialect.js';
import type { DialectName } from '../../providers/sdk.js';
import { type SqlDialect, valueText } from '../../providers/sql/dialect.js';

/** The five queries of the Altcraft static-segment page, verbatim. */
const SEED = {
  add: `INSERT INTO mysegment (segId, clientId, updated)
VALUES
{for $index, $lead = $batch}
({segment_id}, "{$lead.CustomID}", NOW()){autocomma}
{end}
ON DUPLICATE KEY UPDATE
updated = NOW();`,
  remove: `DELETE FROM mysegment
WHERE segment_id = {segment_id}
AND clientId IN ({batch_in "CustomID"})`,
  clear: `DELETE FROM mysegment
WHERE segment_id = {segment_id}`,
  upsert_segment: `INSERT INTO segments (segment_id,name,updated)
VALUES
({segment_id}, "{segment_name}", NOW())
ON DUPLICATE KEY UPDATE
name = "{segment_name}",
updated = NOW();`,
  delete_segment: `DELETE FROM segments
WHERE segment_id = {segment_id}
LIMIT 1`,
};

function parsed(text: string, dialect: DialectName = 'mysql'): Template {
  const r = parseTemplate(text, dialect);
  if (!r.ok) throw new Error(`unexpected template errors: ${JSON.stringify(r.errors)}`);
  return r.template;
}

function errorsOf(text: string, dialect: DialectName = 'mysql'): TemplateError[] {
  const r = parseTemplate(text, dialect);
  if (r.ok) throw new Error(`expected errors for ${JSON.stringify(text)}`);
  return r.errors;
}

function render(
  text: string,
  batch: readonly Profile[] = [],
  opts: { dialect?: SqlDialect; segment?: { id: number; name: string } } = {},
): string {
  const dialect = opts.dialect ?? mysql;
  return renderTemplate({
    template: parsed(text, dialect.name),
    dialect,
    segment: opts.segment ?? { id: 42, name: 'VIP' },
    batch,
  });
}

describe('the seed queries (MySQL)', () => {
  const batch = [{ CustomID: 'c-1' }, { CustomID: `O'Brien "the" \\ one` }, { CustomID: 17 }];

  it('batch add with ON DUPLICATE KEY UPDATE', () => {
    expect(render(SEED.add, batch)).toBe(
      `INSERT INTO mysegment (segId, clientId, updated)
VALUES
(42, "c-1", NOW()),
(42, "O\\'Brien \\"the\\" \\\\ one", NOW()),
(42, "17", NOW())
ON DUPLICATE KEY UPDATE
updated = NOW();`,
    );
  });

  it('batch add of a single profile has no comma', () => {
    expect(render(SEED.add, [{ CustomID: 'only' }])).toBe(
      `INSERT INTO mysegment (segId, clientId, updated)
VALUES
(42, "only", NOW())
ON DUPLICATE KEY UPDATE
updated = NOW();`,
    );
  });

  it('remove with batch_in', () => {
    expect(render(SEED.remove, batch)).toBe(
      `DELETE FROM mysegment
WHERE segment_id = 42
AND clientId IN ('c-1', 'O\\'Brien \\"the\\" \\\\ one', 17)`,
    );
  });

  it('remove of an empty batch matches nothing', () => {
    expect(render(SEED.remove, [])).toBe(`DELETE FROM mysegment
WHERE segment_id = 42
AND clientId IN (NULL)`);
  });

  it('clear', () => {
    expect(render(SEED.clear)).toBe(`DELETE FROM mysegment
WHERE segment_id = 42`);
  });

  it('segment upsert escapes the name inside its double quotes', () => {
    expect(
      render(SEED.upsert_segment, [], { segment: { id: 7, name: 'VIP "gold"; DROP TABLE segments; --' } }),
    ).toBe(
      `INSERT INTO segments (segment_id,name,updated)
VALUES
(7, "VIP \\"gold\\"; DROP TABLE segments; --", NOW())
ON DUPLICATE KEY UPDATE
name = "VIP \\"gold\\"; DROP TABLE segments; --",
updated = NOW();`,
    );
  });

  it('segment delete', () => {
    expect(render(SEED.delete_segment, [], { segment: { id: 7, name: 'x' } })).toBe(`DELETE FROM segments
WHERE segment_id = 7
LIMIT 1`);
  });

  it('lists the fields each template reads', () => {
    expect(templateFields(parsed(SEED.add))).toEqual(['CustomID']);
    expect(templateFields(parsed(SEED.remove))).toEqual(['CustomID']);
    expect(templateFields(parsed(SEED.clear))).toEqual([]);
    expect(
      templateFields(parsed('{for $index, $lead = $batch}{$lead.b}{$lead.a}{$lead.b}{end} {batch_in "c"}')),
    ).toEqual(['b', 'a', 'c']);
  });
});

describe('examples/segments-mysql', () => {
  it('uses the seed queries unchanged, and they parse', () => {
    const file = new URL('../../examples/segments-mysql/backflow.yaml', import.meta.url);
    const config = parseYaml(readFileSync(file, 'utf8')) as {
      segment_integrations: { export_vips: { queries: Record<string, string> } };
    };
    const queries = config.segment_integrations.export_vips.queries;
    expect(Object.fromEntries(Object.entries(queries).map(([k, v]) => [k, v.trimEnd()]))).toEqual(SEED);
    for (const q of Object.values(queries)) expect(parseTemplate(q, 'mysql').ok).toBe(true);
  });
});

describe('parse errors', () => {
  it('unknown tag, with a did-you-mean hint and its line and column', () => {
    expect(errorsOf('DELETE FROM t\nWHERE id = {segmnet_id}')).toEqual([
      {
        message: 'unknown tag `{segmnet_id}`',
        hint: 'did you mean `{segment_id}`?',
        offset: 25,
        line: 2,
        column: 12,
      },
    ]);
  });

  it('misspelled $lead keeps the field in the hint', () => {
    expect(errorsOf('{for $index, $lead = $batch}\n  ({$laed.CustomID}){autocomma}\n{end}')).toEqual([
      {
        message: 'unknown tag `{$laed.CustomID}`',
        hint: 'did you mean `{$lead.CustomID}`?',
        offset: 32,
        line: 2,
        column: 4,
      },
    ]);
  });

  it('an unknown tag with nothing close lists the tags', () => {
    const [e] = errorsOf('SELECT {zzzzzzzzzz}');
    expect(e?.message).toBe('unknown tag `{zzzzzzzzzz}`');
    expect(e?.hint).toContain('`{batch_in "FIELD"}`');
    expect(e?.column).toBe(8);
  });

  it('unclosed loop points at its {for}', () => {
    expect(errorsOf('INSERT INTO t VALUES\n  {for $index, $lead = $batch}({$lead.a})')).toEqual([
      {
        message: 'this loop is never closed',
        hint: 'add `{end}` after the loop body',
        offset: 23,
        line: 2,
        column: 3,
      },
    ]);
  });

  it('{end} without a loop', () => {
    expect(errorsOf('SELECT 1\n{end}')).toEqual([
      {
        message: '`{end}` without a loop to close',
        hint: 'loops are `{for $index, $lead = $batch} … {end}`',
        offset: 9,
        line: 2,
        column: 1,
      },
    ]);
  });

  it('loop-only tags outside a loop', () => {
    const errors = errorsOf('SELECT {$lead.a}, {$index}{autocomma}');
    expect(errors.map((e) => [e.message, e.column])).toEqual([
      ['`{$lead.a}` is only valid inside a loop', 8],
      ['`{$index}` is only valid inside a loop', 19],
      ['`{autocomma}` is only valid inside a loop', 27],
    ]);
  });

  it('nested loops', () => {
    const text = '{for $index, $lead = $batch}\n{for $index, $lead = $batch}\n{end}\n{end}';
    expect(errorsOf(text).map((e) => [e.message, e.line, e.column])).toEqual([
      ['loops cannot be nested', 2, 1],
      ['`{end}` without a loop to close', 4, 1],
    ]);
  });

  it('batch_in inside a quoted literal', () => {
    expect(errorsOf(`DELETE FROM t WHERE id IN ('{batch_in "CustomID"}')`)).toEqual([
      {
        message:
          '`{batch_in}` renders a list of literals and cannot stand inside a quoted literal or identifier',
        hint: 'remove the quotes around it: `IN ({batch_in "CustomID"})`',
        offset: 28,
        line: 1,
        column: 29,
      },
    ]);
  });

  it('malformed loop and batch_in tags', () => {
    expect(errorsOf('{for $i in $batch}{end}')[0]).toMatchObject({
      message: 'malformed loop tag `{for $i in $batch}`',
      hint: 'write `{for $index, $lead = $batch}`',
      column: 1,
    });
    expect(errorsOf('IN ({batch_in CustomID})')[0]).toMatchObject({
      message: 'malformed `{batch_in CustomID}`',
      column: 5,
    });
    expect(errorsOf('{for $index, $lead = $batch}{$lead}{end}')[0]).toMatchObject({
      message: '`{$lead}` needs a profile field name',
      column: 29,
    });
  });

  it('a tag left open on its line', () => {
    expect(errorsOf('SELECT {segment_id\n}')[0]).toMatchObject({ line: 1, column: 8 });
  });

  it('reports every error, in text order', () => {
    const errors = errorsOf('{end}\nSELECT {segmnet_id}, {$index}');
    expect(errors.map((e) => `${e.line}:${e.column}`)).toEqual(['1:1', '2:8', '2:22']);
  });

  it('a loop body must not leave a quote open', () => {
    expect(errorsOf(`{for $index, $lead = $batch}'{$lead.a}{end}'`)[0]).toMatchObject({
      message: 'the loop body opens or closes a quote without balancing it',
      column: 39,
    });
  });

  it('an unterminated literal', () => {
    expect(errorsOf(`SELECT '{segment_name}`)[0]).toMatchObject({
      message: "a '…' literal starting here is never closed",
      column: 8,
    });
  });

  it('values cannot stand where they cannot be escaped', () => {
    expect(errorsOf('SELECT `{segment_name}`', 'mysql')[0]?.message).toBe(
      '`{segment_name}` stands inside a `…` quoted identifier, where a value cannot be escaped',
    );
    expect(errorsOf('SELECT $$ {segment_name} $$', 'postgres')[0]?.message).toContain(
      'a dollar-quoted string',
    );
    expect(errorsOf("SELECT E'{segment_name}'", 'postgres')[0]?.message).toContain("an E'…' string");
    expect(errorsOf("SELECT U&'{segment_name}'", 'postgres')[0]?.message).toContain("a U&'…' string");
    expect(errorsOf('SELECT [{segment_name}]', 'mssql')[0]?.message).toContain('a […] quoted identifier');
    expect(errorsOf("SELECT r'{segment_name}'", 'bigquery')[0]?.message).toContain('a raw string');
    expect(errorsOf("SELECT q'[{segment_name}]'", 'oracle')[0]?.message).toContain("a q'…' string");
  });
});

describe('where a tag stands', () => {
  it('a { not followed by $ or a letter is text: JSON, arrays', () => {
    expect(render(`SELECT '{"a":1}'::jsonb, '{1,2}'::int[], {segment_id}`, [], { dialect: postgres })).toBe(
      `SELECT '{"a":1}'::jsonb, '{1,2}'::int[], 42`,
    );
  });

  it('inside quotes a value is escaped for that quote, outside it is a literal', () => {
    const seg = { id: 5, name: `it's "x"` };
    expect(
      render(`SELECT {segment_name}, '{segment_name}', "{segment_name}", '{segment_id}'`, [], {
        segment: seg,
      }),
    ).toBe(`SELECT 'it\\'s \\"x\\"', 'it\\'s \\"x\\"', "it\\'s \\"x\\"", '5'`);
    expect(
      render(`SELECT {segment_name}, '{segment_name}', "{segment_name}"`, [], {
        segment: seg,
        dialect: postgres,
      }),
    ).toBe(`SELECT 'it''s "x"', 'it''s "x"', "it's ""x"""`);
    expect(render(`SELECT {segment_name}, '{segment_name}'`, [], { segment: seg, dialect: mssql })).toBe(
      `SELECT N'it''s "x"', 'it''s "x"'`,
    );
  });

  it('follows backslash escapes only where the dialect has them', () => {
    // MySQL: \' does not end the literal, so the tag is inside it.
    expect(render(`SELECT 'it\\'s {segment_name}'`, [], { segment: { id: 1, name: "a'b" } })).toBe(
      `SELECT 'it\\'s a\\'b'`,
    );
    // PostgreSQL: 'it\' is a whole literal, so the tag is outside.
    expect(
      render(`SELECT 'it\\' || {segment_name}`, [], { segment: { id: 1, name: "a'b" }, dialect: postgres }),
    ).toBe(`SELECT 'it\\' || 'a''b'`);
  });

  it('tags in comments are comment text', () => {
    expect(render('SELECT 1 -- {segment_id}\n, {segment_id} /* {x} */ # {y}\n', [], {})).toBe(
      'SELECT 1 -- {segment_id}\n, 42 /* {x} */ # {y}\n',
    );
    // MySQL needs a space after --; PostgreSQL has no # comments.
    expect(render('SELECT 1 --{segment_id}', [], {})).toBe('SELECT 1 --42');
    expect(render('SELECT 1 # {segment_id}', [], { dialect: postgres })).toBe('SELECT 1 # 42');
  });

  it('PostgreSQL comments nest', () => {
    expect(render('/* a /* b */ {segment_id} */ {segment_id}', [], { dialect: postgres })).toBe(
      '/* a /* b */ {segment_id} */ 42',
    );
    expect(render('/* a /* b */ {segment_id}', [], {})).toBe('/* a /* b */ 42');
  });

  it('number tags are bare digits inside a quoted identifier', () => {
    expect(
      render('SELECT * FROM `seg_{segment_id}` {for $index, $lead = $batch}AS `t{$index}`{end}', [{}]),
    ).toBe('SELECT * FROM `seg_42` AS `t0`');
    expect(render('DROP TABLE [seg_{segment_id}]', [], { dialect: mssql })).toBe('DROP TABLE [seg_42]');
  });

  it('a quote inside a quoted identifier does not open a literal', () => {
    expect(render("SELECT `it's` FROM t WHERE a = '{segment_name}'", [], {})).toBe(
      "SELECT `it's` FROM t WHERE a = 'VIP'",
    );
  });
});

describe('rendering', () => {
  it('loops count $index from 0 and put a comma after all but the last', () => {
    const t = "VALUES {for $index, $lead = $batch}({$index}, {$lead.n}, '{$index}'){autocomma}{end};";
    expect(render(t, [{ n: 1.5 }, { n: -2 }, { n: 10n }])).toBe(
      "VALUES (0, 1.5, '0'),(1, -2, '1'),(2, 10, '2');",
    );
  });

  it('a missing field is NULL outside quotes and empty inside', () => {
    const t = "{for $index, $lead = $batch}{$lead.a}|'{$lead.a}'|{$lead.constructor}{end}";
    expect(render(t, [{}])).toBe("NULL|''|NULL");
    expect(render(t, [{ a: null }])).toBe("NULL|''|NULL");
  });

  it('non-string values', () => {
    const t = "{for $index, $lead = $batch}{$lead.v} '{$lead.v}'{autocomma}{end}";
    const batch = [
      { v: true },
      { v: Number.NaN },
      { v: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) },
      { v: { a: ["'"] } },
    ];
    expect(render(t, batch)).toBe(
      `TRUE 'true',NULL '','2024-01-02T03:04:05.000Z' '2024-01-02T03:04:05.000Z','{\\"a\\":[\\"\\'\\"]}' '{\\"a\\":[\\"\\'\\"]}'`,
    );
  });

  it('a literal is never glued to the text before it', () => {
    const t = '{for $index, $lead = $batch}E{$lead.s} 1-{$lead.n} x{$lead.n}{end}';
    expect(render(t, [{ s: "\\'; DROP TABLE t; --", n: -5 }], { dialect: postgres })).toBe(
      "E '\\''; DROP TABLE t; --' 1- -5 x-5",
    );
  });

  it("a literal is never glued to the template's next quote", () => {
    expect(render("SELECT {segment_name}'x'", [], {})).toBe("SELECT 'VIP' 'x'");
  });

  it('a {for} or {end} alone on its line leaves no blank line; inline ones keep the text', () => {
    expect(render('A\n  {for $index, $lead = $batch}  \nB{$index}\n{end}\nC', [{}, {}])).toBe('A\nB0\nB1\nC');
    expect(render('A {for $index, $lead = $batch}[{$index}]{end} C', [{}, {}])).toBe('A [0][1] C');
  });

  it('a loop inside a literal escapes every value for that literal', () => {
    const t = "SELECT '{for $index, $lead = $batch}{$lead.a}{autocomma}{end}'";
    expect(render(t, [{ a: "a'b" }, { a: 'c\\' }])).toBe("SELECT 'a\\'b,c\\\\'");
  });

  it('refuses to render with another dialect than the one it was parsed for', () => {
    expect(() =>
      renderTemplate({
        template: parsed('SELECT 1', 'mysql'),
        dialect: postgres,
        segment: { id: 1, name: 'x' },
        batch: [],
      }),
    ).toThrow(/parsed for mysql rendered with the postgres dialect/);
  });
});

/**
 * The renderer as it was before its fast paths (regular expressions on every piece, the dialect
 * escaping every value): renderTemplate must write exactly what it wrote.
 */
function referenceRender(
  template: Template,
  dialect: SqlDialect,
  segment: { id: number; name: string },
  batch: readonly Profile[],
): string {
  const parts: string[] = [];
  let last = '';
  let afterLiteral = false;
  const push = (s: string): void => {
    if (s === '') return;
    if (afterLiteral && /^['"`]/.test(s) && last === s[0]) parts.push(' ');
    parts.push(s);
    last = s[s.length - 1]!;
    afterLiteral = false;
  };
  const literal = (s: string): void => {
    const first = s[0] ?? '';
    const glue =
      (/[A-Za-z0-9_$'"`\]]/.test(last) && /[A-Za-z_'"]/.test(first)) ||
      (last === '-' && first === '-') ||
      (last === '/' && first === '*');
    if (glue) push(' ');
    push(s);
    afterLiteral = true;
  };
  const value = (v: unknown, place: string): void => {
    if (place === 'outside') literal(dialect.literal(v));
    else if (place === 'digits') push(String(v));
    else push(dialect.escapeInQuote(valueText(v) ?? '', place as "'" | '"'));
  };
  const emit = (
    nodes: Template['nodes'],
    lead: Profile | undefined,
    index: number,
    lastIndex: boolean,
  ): void => {
    for (const n of nodes) {
      if (n.kind === 'text') push(n.text);
      else if (n.kind === 'segment_id') value(segment.id, n.place);
      else if (n.kind === 'segment_name') value(segment.name, n.place);
      else if (n.kind === 'index') value(index, n.place);
      else if (n.kind === 'field')
        value(lead && Object.hasOwn(lead, n.field) ? lead[n.field] : undefined, n.place);
      else if (n.kind === 'autocomma') {
        if (!lastIndex) push(',');
      } else if (n.kind === 'batch_in')
        literal(
          batch.length === 0
            ? 'NULL'
            : batch
                .map((p) => dialect.literal(Object.hasOwn(p, n.field) ? p[n.field] : undefined))
                .join(', '),
        );
      else if (n.kind === 'loop')
        batch.forEach((p, i) => {
          emit(n.body, p, i, i === batch.length - 1);
        });
    }
  };
  emit(template.nodes, undefined, 0, true);
  return parts.join('');
}

describe('rendering matches the reference renderer', () => {
  const templates = [
    'SELECT {for $index, $lead = $batch}x{$lead.v}-{$lead.v}/{$lead.v} \'{$lead.v}\' "{$lead.v}"{autocomma}{end}',
    "INSERT INTO t VALUES {for $index, $lead = $batch}({segment_id}, '{$lead.v}', {$lead.v}, '{segment_name}'){autocomma}\n{end};",
    "SELECT {segment_name}'x', {segment_id}-{segment_id}, E{segment_name}, '{segment_name}{segment_name}'",
    'DELETE FROM t WHERE k IN ({batch_in "v"}) AND s = {segment_name}',
    "SELECT '{for $index, $lead = $batch}{$lead.v}{autocomma}{end}'{segment_name}",
  ];
  // Text made of the characters escaping and gluing care about, and some that need nothing.
  const alphabet = [
    'a',
    'Z',
    '0',
    '_',
    '-',
    '/',
    '*',
    "'",
    '"',
    '`',
    '\\',
    '$',
    ']',
    ' ',
    '\n',
    '\r',
    '\t',
    '\x1a',
    '\0',
    'é',
    '😀',
    '\u2028',
    '?',
    '{',
  ];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const text = () => Array.from({ length: random(6) }, () => alphabet[random(alphabet.length)]).join('');
  const values = (): unknown => {
    const pick = random(10);
    if (pick < 6) return text();
    return [-5, 3.25, null, true, undefined, { a: text() }][pick - 4];
  };
  for (const dialect of Object.values(dialects)) {
    it(dialect.name, () => {
      let compared = 0;
      for (const text of templates) {
        const r = parseTemplate(text, dialect.name);
        // A `"…"` is a quoted identifier in some dialects, where a value cannot stand.
        if (!r.ok && text.includes('"{')) continue;
        if (!r.ok) throw new Error(`${dialect.name}: ${JSON.stringify(r.errors)}`);
        for (let round = 0; round < 60; round++) {
          const batch = Array.from({ length: random(4) }, () => ({ v: values() }));
          const segment = { id: random(3) - 1, name: String(values() ?? '') };
          const outcome = (f: () => string) => {
            try {
              return f();
            } catch (e) {
              return `throws ${(e as Error).message}`;
            }
          };
          expect(outcome(() => renderTemplate({ template: r.template, dialect, segment, batch }))).toBe(
            outcome(() => referenceRender(r.template, dialect, segment, batch)),
          );
          compared++;
        }
      }
      expect(compared).toBeGreaterThanOrEqual(120);
    });
  }
});
