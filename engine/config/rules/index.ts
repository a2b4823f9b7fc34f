import type { Diagnostic } from '../../diagnostics.js';
import type { Rule, RuleContext } from './context.js';
import { actionFitsDestination, fieldsWellFormed, schedulesValid } from './mappings.js';
import { referencesExist, segmentIdsUnique } from './references.js';
import { secretsByReference, stateSettings } from './secrets.js';
import { templatesParse } from './templates.js';

/** The rules beyond the schema, one small function each, run in this order. */
export const RULES: readonly Rule[] = [
  referencesExist,
  segmentIdsUnique,
  actionFitsDestination,
  fieldsWellFormed,
  schedulesValid,
  templatesParse,
  secretsByReference,
  stateSettings,
];

export function runRules(ctx: RuleContext): Diagnostic[] {
  return RULES.flatMap((rule) => {
    try {
      return rule(ctx);
    } catch {
      return []; // rules are defensive; a shape the schema already rejected must not hide other problems
    }
  });
}
