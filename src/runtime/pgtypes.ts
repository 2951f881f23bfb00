/**
 * The PostgreSQL types whose parameters take a JS value in other than the default way: one
 * declarative table, one row per family of types (as postgres.js's types table). params.ts reads
 * it through {@link paramRuleOf}; a type not listed here follows {@link DEFAULT_RULE}.
 *
 * What comes back from a query is decided by the bridge (the column kinds, COL_* in native.ts),
 * not here.
 */
import { OID } from './oids';

/** How a parameter of one type takes a JS value. */
export interface ParamRule {
  /** the family's name, for messages and tests */
  readonly family: string;
  /**
   * a JS number: `integer` and `float` send it as a number (the bridge binds it in binary, so it
   * arrives exactly); `text` sends its shortest text. Inside an array literal `integer` writes an
   * unsafe integer (past 2^53) exactly and `float` keeps the sign of -0.
   */
  readonly number: 'integer' | 'float' | 'text';
  /** a Date: its UTC calendar day, a timestamp in UTC, or toISOString() */
  readonly date: 'day' | 'timestamp' | 'iso';
  /** any value but null goes as JSON text (a string is taken as JSON text already) */
  readonly json: boolean;
  /** a Uint8Array: sent as bytes, or as bytea hex text ('\x...') */
  readonly bytes: 'binary' | 'hex';
}

/** The rule of every type not in {@link TYPE_FAMILIES}. */
export const DEFAULT_RULE: ParamRule = Object.freeze({ family: 'default', number: 'text', date: 'iso', json: false, bytes: 'hex' });

/** The families of types with their own rule: the OIDs each covers and what differs from the default. */
export const TYPE_FAMILIES: readonly (Partial<ParamRule> & { readonly family: string; readonly oids: readonly number[] })[] = [
  { family: 'integer', oids: [OID.INT2, OID.INT4, OID.INT8], number: 'integer' },
  { family: 'float', oids: [OID.FLOAT4, OID.FLOAT8], number: 'float' },
  { family: 'date', oids: [OID.DATE], date: 'day' },
  { family: 'timestamp', oids: [OID.TIMESTAMP, OID.TIMESTAMPTZ], date: 'timestamp' },
  { family: 'json', oids: [OID.JSON, OID.JSONB], json: true },
  { family: 'bytea', oids: [OID.BYTEA], bytes: 'binary' },
];

const RULES = new Map<number, ParamRule>();
for (const { oids, ...rule } of TYPE_FAMILIES) {
  const full = Object.freeze({ ...DEFAULT_RULE, ...rule });
  for (const oid of oids) RULES.set(oid, full);
}

/** The rule for parameters of type `oid`. */
export function paramRuleOf(oid: number): ParamRule {
  return RULES.get(oid) ?? DEFAULT_RULE;
}
