/**
 * What every database destination does before it writes: check the load request, then sort the
 * records into operations by action and change. Pure; the SQL is the dialect's business.
 */
import type { ActionName, LoadRecord, LoadRequest, RecordResult } from '../sdk.js';
import { ProviderError, UserError } from '../sdk.js';

/** The actions a database destination takes. */
export const DB_ACTIONS: ReadonlySet<ActionName> = new Set([
  'upsert',
  'insert',
  'update',
  'delete',
  'mirror',
]);

/** What one record turns into in a table. */
export type Operation = 'upsert' | 'insert' | 'update' | 'delete';

/** The table and key a load writes through, once the request is known to be complete. */
export interface LoadTarget {
  readonly table: string;
  readonly key: string | undefined;
}

/**
 * Checks the request: an action this provider knows, `table`, and `key` for every action but
 * insert. Throws a UserError naming what is missing.
 */
export function checkLoadRequest(req: LoadRequest, provider: string): LoadTarget {
  if (!DB_ACTIONS.has(req.action))
    throw new UserError(`${provider} destinations have no action \`${req.action}\``, {
      hint: 'use upsert, insert, update, delete or mirror',
    });
  const table = req.options.table;
  if (!table) throw new UserError(`action ${req.action} needs \`table\``);
  const key = req.options.key;
  if (!key && req.action !== 'insert') throw new UserError(`action ${req.action} needs \`key\``);
  return { table, key };
}

/** The load's table is missing: the whole batch fails before anything is written. */
export function tableNotFound(table: string, where: string): ProviderError {
  return new ProviderError(`table ${table} does not exist in ${where}`, {
    code: 'table_not_found',
    retryable: false,
    hint: 'create the table, or run `backflow plan` to check the mapping',
  });
}

/** The operation a record becomes under an action, or undefined when the action cannot carry it. */
export function operation(action: ActionName, record: LoadRecord): Operation | undefined {
  const deleted = record.change === 'deleted' || (!record.fieldNames && record.fields === null);
  switch (action) {
    case 'upsert':
    case 'insert':
    case 'update':
      return deleted ? undefined : action;
    case 'delete':
      return 'delete';
    case 'mirror':
      return deleted ? 'delete' : 'upsert';
    default:
      return undefined;
  }
}

/** The result of a record its action cannot carry (a deletion under upsert, insert or update). */
export function unsupportedChange(action: ActionName, record: LoadRecord): RecordResult {
  return {
    status: 'rejected',
    code: 'unsupported_change',
    message: `action ${action} cannot carry a ${record.change} record`,
  };
}

/**
 * Visits the records in batch order with their operation; a record the action cannot carry gets
 * its `unsupported_change` result in `results` and is not visited.
 */
export function eachOperation<Op extends string>(
  req: LoadRequest,
  results: (RecordResult | undefined)[],
  operationOf: (action: ActionName, record: LoadRecord) => Op | undefined,
  visit: (op: Op, record: LoadRecord, index: number) => void,
): void {
  req.records.forEach((record, index) => {
    const op = operationOf(req.action, record);
    if (op === undefined) results[index] = unsupportedChange(req.action, record);
    else visit(op, record, index);
  });
}

/** The records grouped by operation (each group in batch order), built into the provider's items. */
export function groupByOperation<Op extends string, T>(
  req: LoadRequest,
  results: (RecordResult | undefined)[],
  operationOf: (action: ActionName, record: LoadRecord) => Op | undefined,
  build: (record: LoadRecord, index: number, op: Op) => T,
): Map<Op, T[]> {
  const groups = new Map<Op, T[]>();
  eachOperation(req, results, operationOf, (op, record, index) => {
    let group = groups.get(op);
    if (!group) {
      group = [];
      groups.set(op, group);
    }
    group.push(build(record, index, op));
  });
  return groups;
}
