/**
 * Parameter serialisation: what the runtime hands the bridge for a JS value, by the parameter's
 * type as the server inferred it (the rules per type are in pgtypes.ts). Pure functions.
 *
 * The bridge accepts null, boolean, number, bigint, string or Uint8Array; it binds numbers and
 * bytes in binary and everything else as text the type's input function reads.
 */
import { paramRuleOf, ParamRule } from './pgtypes';

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** The UTC calendar day of a Date as PostgreSQL reads it: year 0 and before are BC, 5+ digit years too. */
function dayText(d: Date): string {
  const y = d.getUTCFullYear();
  return `${pad(y < 1 ? 1 - y : y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** A Date as a PostgreSQL date (its UTC calendar day). */
export function dateText(d: Date): string {
  return d.getUTCFullYear() < 1 ? `${dayText(d)} BC` : dayText(d);
}

/**
 * A Date as a PostgreSQL timestamp(tz) in UTC. Not toISOString(): PostgreSQL reads neither its
 * signed 6-digit years (-000001, +010000) nor year 0.
 */
export function timestampText(d: Date): string {
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}+00`;
  return `${dayText(d)} ${time}${d.getUTCFullYear() < 1 ? ' BC' : ''}`;
}

/** Bytes as bytea's hex text: `\x0a1b...`. */
export function hexText(bytes: Uint8Array): string {
  return '\\x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function dateValueText(v: Date, rule: ParamRule): string {
  if (Number.isNaN(v.getTime())) throw new TypeError('an invalid Date cannot be sent to PostgreSQL');
  if (rule.date === 'day') return dateText(v);
  return rule.date === 'timestamp' ? timestampText(v) : v.toISOString();
}

function numberText(v: number, rule: ParamRule): string {
  if (Object.is(v, -0) && rule.number === 'float') return '-0';
  // past 2^53 the shortest text of a number is another integer: write its exact value
  if (rule.number === 'integer' && Number.isInteger(v) && !Number.isSafeInteger(v)) return BigInt(v).toString();
  return String(v);
}

/** The text of one value of a type (an array element), or null for NULL. */
export function scalarText(v: unknown, type: number): string | null {
  if (v === null || v === undefined) return null;
  const rule = paramRuleOf(type);
  if (v instanceof Date) return dateValueText(v, rule);
  if (v instanceof Uint8Array) return hexText(v);
  switch (typeof v) {
    case 'object': {
      const text = JSON.stringify(v);
      if (text === undefined) throw new TypeError('an object whose JSON is undefined cannot be sent to PostgreSQL');
      return text;
    }
    case 'number':
      return numberText(v, rule);
    case 'function':
    case 'symbol':
      throw new TypeError(`a ${typeof v} cannot be sent to PostgreSQL`);
  }
  return String(v);
}

/** A (nested) JS array as a PostgreSQL array literal of elements of type `elemType`. */
export function arrayLiteral(items: readonly unknown[], elemType: number): string {
  const parts = items.map((item) => {
    if (Array.isArray(item)) return arrayLiteral(item, elemType);
    const text = scalarText(item, elemType);
    if (text === null) return 'NULL';
    return '"' + text.replace(/[\\"]/g, '\\$&') + '"';
  });
  return '{' + parts.join(',') + '}';
}

function jsonText(v: unknown): string {
  if (typeof v === 'string') return v;
  const text = JSON.stringify(v);
  if (text === undefined) throw new TypeError(`a ${typeof v} cannot be sent as JSON`);
  return text;
}

/**
 * Turns a JS value into what the bridge accepts for a parameter of type `type` (`elemType`: its
 * element type when it is an array type, else 0): null, boolean, number, bigint, string or
 * Uint8Array.
 *
 * @throws TypeError for a value PostgreSQL cannot take (a function, a symbol, an invalid Date).
 */
export function serializeParam(v: unknown, type: number, elemType: number): unknown {
  if (v === null || v === undefined) return null;
  if (elemType !== 0 && Array.isArray(v)) return arrayLiteral(v, elemType);
  const rule = paramRuleOf(type);
  if (rule.json) return jsonText(v);
  switch (typeof v) {
    case 'number':
      return rule.number === 'text' ? String(v) : v;
    case 'boolean':
    case 'bigint':
    case 'string':
      return v;
    case 'function':
    case 'symbol':
      throw new TypeError(`a ${typeof v} cannot be sent to PostgreSQL`);
  }
  if (v instanceof Uint8Array) return rule.bytes === 'binary' ? v : hexText(v);
  if (v instanceof Date) return dateValueText(v, rule);
  return JSON.stringify(v);
}

/**
 * The values of a statement's parameters as the bridge takes them, by the parameter types the
 * server inferred; null when there are none.
 *
 * @throws TypeError when the count differs from the statement's, or a value cannot be sent.
 */
export function serializeParams(values: readonly unknown[], paramTypes: readonly number[], elemTypes: readonly number[]): unknown[] | null {
  const n = values.length;
  if (n !== paramTypes.length) throw new TypeError(`the statement takes ${paramTypes.length} parameters but ${n} were given`);
  if (n === 0) return null;
  const sent = new Array(n);
  for (let i = 0; i < n; i++) sent[i] = serializeParam(values[i], paramTypes[i], elemTypes[i]);
  return sent;
}
