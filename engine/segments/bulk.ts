/**
 * Many rows in one statement with one parameter: a JSON array, unpacked by the database
 * (SQLite's json_each, PostgreSQL's json_array_elements). The statement text stays the same
 * whatever the row count, and a 10,000-row insert is one statement instead of 90,000 bound values.
 */
import type { StoreSql } from '../store/sql.js';

/**
 * A FROM item over a JSON array parameter: column `value` is the element (read its parts with
 * `value ->> 0`, `value ->> 1`, …), column `key` its 0-based position (ORDER BY key keeps the order).
 */
export function jsonRows(sql: StoreSql): string {
  return sql.dialect === 'sqlite'
    ? 'json_each(?)'
    : 'json_array_elements(?::json) WITH ORDINALITY AS j(value, key)';
}

/** A subquery over a JSON array parameter of strings, for `x IN (…)`. */
export function jsonTexts(sql: StoreSql): string {
  return sql.dialect === 'sqlite'
    ? 'SELECT value FROM json_each(?)'
    : 'SELECT json_array_elements_text(?::json)';
}

/** A subquery over a JSON array parameter of integers, for `x IN (…)`. */
export function jsonInts(sql: StoreSql): string {
  return sql.dialect === 'sqlite'
    ? 'SELECT value FROM json_each(?)'
    : 'SELECT json_array_elements_text(?::json)::bigint';
}
