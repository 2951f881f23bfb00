/**
 * fast-check arbitraries and reference models for test/properties.test.ts:
 *
 * - values for every type of the README's table (JS <-> PostgreSQL conversion), each with
 *   its round-trip equality and its node-postgres reading (the oracle);
 * - PostgreSQL date/timestamp literals over the server's whole range (PG -> JS reading);
 * - worker manifests (valid, arbitrary JSON, arbitrary bytes, mutated valid ones) and a
 *   model of the manifest rules of docs/DESIGN.md that says what the reader must do with each.
 */
import fc from 'fast-check';

// ----------------------------------------------------------------- the codec

/**
 * JavaScript source of enc/dec, evaluated both in the worker (in the job's code) and here, so
 * values cross the jobs table as JSON without losing bigint, -0, NaN, +-Infinity, Date
 * (invalid ones too), Uint8Array/Buffer (and views at an offset), undefined, objects with any
 * keys (__proto__ included) and strings with NUL or lone surrogates.
 */
export const CODEC = String.raw`
function enc(v) {
  if (v === null) return null;
  switch (typeof v) {
    case 'undefined': return { $u: 1 };
    case 'number': return Object.is(v, -0) ? { $n: '-0' } : Number.isFinite(v) ? v : { $n: String(v) };
    case 'bigint': return { $b: v.toString() };
    case 'string': case 'boolean': return v;
    case 'object': break;
    default: return { $t: typeof v, s: String(v) };
  }
  if (v instanceof Date) { const t = v.getTime(); return { $d: Number.isNaN(t) ? 'invalid' : t }; }
  if (ArrayBuffer.isView(v)) {
    let hex = '';
    const b = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (let i = 0; i < b.length; i++) hex += (b[i] < 16 ? '0' : '') + b[i].toString(16);
    return { $x: hex, $c: v.constructor.name };
  }
  if (Array.isArray(v)) return v.map(enc);
  return { $o: Object.keys(v).map((k) => [k, enc(v[k])]) };
}
function dec(v) {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(dec);
  if ('$u' in v) return undefined;
  if ('$n' in v) return v.$n === '-0' ? -0 : Number(v.$n);
  if ('$b' in v) return BigInt(v.$b);
  if ('$d' in v) return new Date(v.$d === 'invalid' ? NaN : v.$d);
  if ('$x' in v) {
    const bytes = new Uint8Array(v.$x.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(v.$x.substr(2 * i, 2), 16);
    if (v.$c === 'Buffer') return Buffer.from(bytes);
    if (v.$view) {
      const big = new Uint8Array(v.$view[0] + bytes.length + v.$view[1]).fill(0xaa);
      big.set(bytes, v.$view[0]);
      return big.subarray(v.$view[0], v.$view[0] + bytes.length);
    }
    if (v.$c !== 'Uint8Array') return { $unexpectedClass: v.$c, bytes };
    return bytes;
  }
  if ('$t' in v) return { $unexpectedType: v.$t, s: v.s };
  if ('$o' in v) {
    const o = {};
    for (const [k, x] of v.$o) Object.defineProperty(o, k, { value: dec(x), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}`;

const codec = new Function(`${CODEC}; return { enc, dec };`)() as { enc: (v: unknown) => unknown; dec: (v: unknown) => unknown };
export const enc = codec.enc;
export const dec = codec.dec;

/** A Uint8Array that the codec rebuilds as a view at an offset into a bigger buffer. */
export class ViewBytes {
  constructor(readonly bytes: Uint8Array, readonly before: number, readonly after: number) {}
}

/** enc, plus ViewBytes (test side only: the worker decodes them to views). */
export function encInput(v: unknown): unknown {
  if (v instanceof ViewBytes) return { ...(enc(v.bytes) as object), $view: [v.before, v.after] };
  if (Array.isArray(v)) return v.map(encInput);
  return enc(v);
}

/** The value a ViewBytes stands for (what the worker sends). */
export function plain(v: unknown): unknown {
  if (v instanceof ViewBytes) return v.bytes;
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

// ----------------------------------------------------------------- equality

/**
 * Structural equality of converted values: numbers by Object.is (NaN equals NaN, -0 is not 0),
 * Dates by time, byte arrays by content and class, objects regardless of key order.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' || typeof b === 'number') return Object.is(a, b);
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime());
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array)) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b) || a.length !== b.length) return false;
    return a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    return a.every((x, i) => sameValue(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
    return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/** Equality of JSON values (numbers by ===: JSON has no -0 a JS value could keep). */
function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b));
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    return a.every((x, i) => sameJson(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
    return ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/** A string as it comes back from a UTF-8 database: lone surrogates become U+FFFD. */
export function wellFormed(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

// ----------------------------------------------------------------- value specs

/** What the worker or node-postgres reported for one value. */
export interface Outcome {
  v?: unknown;
  t?: string | null;
  e?: { name?: string; code?: string; isPgError?: boolean; message?: string };
  te?: Outcome['e'];
  cols?: unknown;
  flat?: unknown;
}

/** node-postgres read nothing we can compare with (e.g. an Invalid Date past JS's range). */
export const NO_ORACLE = Symbol('no oracle');

export interface ValueSpec {
  /** the SQL type the parameter is cast to */
  type: string;
  arb: fc.Arbitrary<unknown>;
  /** w, read back by the worker, is the round trip of the JS value v (PostgreSQL accepted v) */
  roundTrips: (v: unknown, w: unknown) => boolean;
  /** node-postgres's parsed value in the worker's representation */
  fromPg: (x: unknown) => unknown;
  /** what node-postgres sends for v (default: v, serialised by node-postgres itself) */
  toPg?: (v: unknown) => unknown;
  /** a refusal by the worker that PostgreSQL would not make, but that the README allows */
  allowedRefusal?: (v: unknown, e: NonNullable<Outcome['e']>) => boolean;
}

/** A Date at a proleptic Gregorian UTC day (astronomical year: 0 is 1 BC) and ms. */
export function utc(y: number, month = 0, day = 1, ms = 0): Date {
  const d = new Date(0);
  d.setUTCFullYear(y, month, day);
  d.setUTCMilliseconds(ms);
  return d;
}

/** JS Date limits */
export const JS_MAX_MS = 8.64e15;

/** with NULL (null and undefined) now and then */
const orNull = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null | undefined> =>
  fc.oneof({ weight: 12, arbitrary: arb }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constant(undefined) });

/** -0 survives node-postgres only as text */
const negZeroText = (v: unknown): unknown => (Object.is(v, -0) ? '-0' : v);

function intSpec(type: string, bits: 16 | 32): ValueSpec {
  const min = -(2 ** (bits - 1));
  const max = 2 ** (bits - 1) - 1;
  return {
    type,
    arb: orNull(
      fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min, max }) },
        { weight: 2, arbitrary: fc.constantFrom(min, max, 0, -0, -1, 1, min - 1, max + 1) },
        // fractions, NaN, +-Infinity, huge: PostgreSQL refuses them
        { weight: 1, arbitrary: fc.double() },
        { weight: 1, arbitrary: fc.bigInt({ min: BigInt(min) * 2n, max: BigInt(max) * 2n }) },
      ),
    ),
    roundTrips: (v, w) => (v == null ? w === null : typeof w === 'number' && w === Number(v)),
    fromPg: (x) => x,
  };
}

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

const int8Spec: ValueSpec = {
  type: 'int8',
  arb: orNull(
    fc.oneof(
      { weight: 5, arbitrary: fc.bigInt({ min: INT8_MIN, max: INT8_MAX }) },
      { weight: 3, arbitrary: fc.constantFrom(INT8_MAX, -INT8_MAX, INT8_MIN, 0n, -1n, INT8_MAX + 1n, INT8_MIN - 1n, 2n ** 64n, -(2n ** 100n)) },
      { weight: 2, arbitrary: fc.maxSafeInteger() },
      { weight: 1, arbitrary: fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 60, 2 ** 63, -(2 ** 63), 0.5) },
      // integers past 2^53 as numbers: their shortest text is often not their value
      { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }).map((b) => Number(b)).filter((n) => !Number.isSafeInteger(n)) },
      { weight: 1, arbitrary: fc.double() },
    ),
  ),
  roundTrips: (v, w) => (v == null ? w === null : typeof w === 'bigint' && w === BigInt(v as number | bigint)),
  fromPg: (x) => (x === null ? null : BigInt(x as string)),
  // the exact value of an integer number (node-postgres would send its shortest text, which past
  // 2^53 is often another integer)
  toPg: (v) => (typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v),
  // README: int8 is exchanged as bigint; a number past 2^53 may already have lost digits, and
  // the bridge refuses it (as text "%.17g", so 22P02) rather than guess
  allowedRefusal: (v, e) => typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && e.isPgError === true && e.code === '22P02',
};

const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN_SUB = 1.401298464324817e-45;

const float4Spec: ValueSpec = {
  type: 'float4',
  arb: orNull(
    fc.oneof(
      { weight: 4, arbitrary: fc.float() },
      { weight: 3, arbitrary: fc.double() },
      {
        weight: 2,
        arbitrary: fc.constantFrom(FLT_MAX, -FLT_MAX, FLT_MIN_SUB, -FLT_MIN_SUB, 0.1, -0, 0, NaN, Infinity, -Infinity, 1e39, -1e39, 1e-46, 3.4028235677973366e38),
      },
    ),
  ),
  roundTrips: (v, w) => (v == null ? w === null : typeof w === 'number' && Object.is(w, Math.fround(v as number))),
  // PostgreSQL prints the shortest text that reads back as the same float4
  fromPg: (x) => (x === null ? null : Math.fround(x as number)),
  toPg: negZeroText,
  // a finite number that rounds to no finite real (or to 0) is refused as PostgreSQL's float4
  // does (22003), also where node-postgres's decimal text happens to round the other way
  // (3.4028235677973366e38, half-way to the next power of two, is FLT_MAX as text)
  allowedRefusal: (v, e) =>
    typeof v === 'number' && Number.isFinite(v) && (!Number.isFinite(Math.fround(v)) || (v !== 0 && Math.fround(v) === 0)) && e.isPgError === true && e.code === '22003',
};

const float8Spec: ValueSpec = {
  type: 'float8',
  arb: orNull(
    fc.oneof(
      { weight: 5, arbitrary: fc.double() },
      { weight: 1, arbitrary: fc.constantFrom(-0, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE, Number.MAX_VALUE, 0.1, 2 ** 53 + 2) },
    ),
  ),
  roundTrips: (v, w) => (v == null ? w === null : Object.is(w, v)),
  fromPg: (x) => x,
  toPg: negZeroText,
};

/** a decimal's canonical text: no leading/trailing zeros, no "-0" */
function canonicalDecimal(s: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) return s;
  const int = m[2].replace(/^0+/, '') || '0';
  const frac = (m[3] ?? '').replace(/0+$/, '');
  const sign = m[1] === '-' && (int !== '0' || frac !== '') ? '-' : '';
  return sign + int + (frac ? '.' + frac : '');
}

const decimalString = fc
  .tuple(fc.constantFrom('', '-', '+'), fc.stringMatching(/^[0-9]{1,40}$/), fc.option(fc.stringMatching(/^[0-9]{0,40}$/), { nil: undefined }))
  .map(([sign, int, frac]) => sign + int + (frac === undefined ? '' : '.' + frac));

const numericSpec: ValueSpec = {
  type: 'numeric',
  arb: orNull(
    fc.oneof(
      { weight: 3, arbitrary: fc.double() },
      { weight: 2, arbitrary: fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }) },
      { weight: 3, arbitrary: decimalString },
      { weight: 1, arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e1000', '-0.000', '12abc', '') },
    ),
  ),
  roundTrips: (v, w) => {
    if (v == null) return w === null;
    if (typeof w !== 'string') return false;
    if (typeof v === 'number') {
      if (Number.isNaN(v)) return w === 'NaN';
      if (!Number.isFinite(v)) return w === (v > 0 ? 'Infinity' : '-Infinity');
      return Number(w) === v;
    }
    if (typeof v === 'bigint') return /^-?\d+$/.test(w) && BigInt(w) === v;
    const s = v as string;
    if (/^(NaN|-?Infinity)$/.test(s)) return w === s;
    if (/e/i.test(s)) return Number(w) === Number(s);
    return canonicalDecimal(w) === canonicalDecimal(s);
  },
  fromPg: (x) => x,
};

const BOOL_TEXT: Record<string, boolean> = { t: true, f: false, yes: true, no: false, on: true, off: false, 1: true, 0: false, true: true, false: false };

const boolSpec: ValueSpec = {
  type: 'bool',
  arb: orNull(
    fc.oneof(
      { weight: 6, arbitrary: fc.boolean() },
      { weight: 2, arbitrary: fc.constantFrom('t', 'f', 'yes', 'no', 'on', 'off', '1', '0', 'maybe', '') },
      { weight: 1, arbitrary: fc.constantFrom(0, 1, 2) },
    ),
  ),
  roundTrips: (v, w) => (v == null ? w === null : w === (typeof v === 'boolean' ? v : BOOL_TEXT[String(v)])),
  fromPg: (x) => x,
};

/** one code point, a lone surrogate, or a character that array literals, JSON or SQL treat specially */
const textUnit: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '\\', '"', "'", ',', '{', '}', ' ', '\t', '\n', '\r', 'NULL', 'null', '\u00e9', 'e\u0301', '\u{1F600}',
      '\u{1F469}\u200D\u{1F4BB}', '\u2028', '\ufeff', '\uffff', '\u{10FFFF}', '\x7f', '\x01', '\u0130', '\u05d0',
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
);

/** arbitrary unicode text without NUL (PostgreSQL's text cannot hold it: a property of its own) */
export const textArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: textUnit, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: textUnit, minLength: 500, maxLength: 3000 }) },
).map((s) => s.replace(/\0/g, '0'));

export const textWithNulArb: fc.Arbitrary<string> = fc
  .tuple(fc.string({ unit: textUnit, maxLength: 10 }), fc.string({ unit: textUnit, maxLength: 10 }))
  .map(([a, b]) => `${a}\0${b}`);

function textSpec(type: string): ValueSpec {
  return {
    type,
    arb: orNull(textArb),
    roundTrips: (v, w) => (v == null ? w === null : w === wellFormed(v as string)),
    fromPg: (x) => x,
  };
}

const byteaArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1000, maxLength: 5000 }) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)) },
  // a view at an offset into a bigger buffer: only its own bytes may be sent
  {
    weight: 2,
    arbitrary: fc.tuple(fc.uint8Array({ maxLength: 32 }), fc.nat(16), fc.nat(16)).map(([b, before, after]) => new ViewBytes(b, before, after)),
  },
);

const byteaSpec: ValueSpec = {
  type: 'bytea',
  arb: orNull(byteaArb),
  roundTrips: (v, w) =>
    v == null
      ? w === null
      : w instanceof Uint8Array && Object.getPrototypeOf(w) === Uint8Array.prototype && sameValue(w, new Uint8Array(plain(v) as Uint8Array)),
  fromPg: (x) => (x === null ? null : new Uint8Array(x as Buffer)),
  toPg: (v) => (v instanceof ViewBytes ? Buffer.from(v.bytes) : v),
};

/**
 * JSON values: anything JSON.stringify accepts except a top-level string (which the README says
 * is sent as JSON text as it is), and JSON texts given as strings. Strings inside may hold NUL
 * (\u0000: json keeps it, jsonb refuses it) and lone surrogates.
 */
const jsonStringUnit = fc.oneof({ weight: 8, arbitrary: textUnit }, { weight: 1, arbitrary: fc.constant('\0') });
const jsonValueArb = fc.jsonValue({ stringUnit: jsonStringUnit, maxDepth: 3 });
const jsonArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: jsonValueArb.filter((v) => typeof v !== 'string') },
  { weight: 2, arbitrary: fc.json({ stringUnit: jsonStringUnit, maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom('not json', '{"a":', '', '{"a":1,"a":2}', '[1,2', '1e400', '"\\ud800"') },
);

function jsonSpec(type: 'json' | 'jsonb'): ValueSpec {
  return {
    type,
    arb: orNull(jsonArb),
    roundTrips: (v, w) => {
      if (v == null) return w === null;
      const expected = JSON.parse(typeof v === 'string' ? v : JSON.stringify(v));
      return sameJson(w, expected);
    },
    fromPg: (x) => x,
    // node-postgres sends a JS array as a PostgreSQL array literal: JSON.stringify it, as its
    // documentation says (a string goes as it is, as the worker sends it)
    toPg: (v) => (v == null || typeof v === 'string' ? v : JSON.stringify(v)),
  };
}

/** dates around the ends of PostgreSQL's and JavaScript's ranges */
const dateEdges = [
  utc(-4713, 10, 24), // 4714-11-24 BC: PostgreSQL's first day
  utc(-4713, 10, 23), // the day before: out of range
  utc(-4712, 0, 1), // 4713 BC
  utc(-1, 5, 15), // 2 BC
  utc(0, 0, 1), // 1 BC
  utc(0, 11, 31, 86399999),
  utc(1, 0, 1), // 1 AD
  utc(99, 5, 1),
  utc(1969, 11, 31, 86399999), // 1 ms before the epoch
  new Date(0),
  utc(2000, 0, 1),
  utc(2024, 1, 29, 45296789),
  utc(9999, 11, 31, 86399999),
  utc(10000, 0, 1),
  new Date(JS_MAX_MS), // +275760-09-13
  new Date(-JS_MAX_MS), // -271821-04-20: before PostgreSQL's range
];

const dateArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.date({ noInvalidDate: true }) },
  { weight: 3, arbitrary: fc.date({ min: utc(-4713, 10, 20), max: utc(10001, 0, 1), noInvalidDate: true }) },
  { weight: 2, arbitrary: fc.constantFrom(...dateEdges) },
  { weight: 1, arbitrary: fc.constantFrom('infinity', '-infinity', 'epoch') },
);

const readDate = (x: unknown): unknown => {
  if (x === Infinity) return 'infinity';
  if (x === -Infinity) return '-infinity';
  if (x instanceof Date && Number.isNaN(x.getTime())) return NO_ORACLE;
  return x;
};

const dateSpec: ValueSpec = {
  type: 'date',
  arb: orNull(dateArb),
  roundTrips: (v, w) => {
    if (v == null) return w === null;
    if (v === 'epoch') return w instanceof Date && w.getTime() === 0;
    if (typeof v === 'string') return w === v;
    // README: a Date goes to date as its UTC day; date reads as UTC midnight
    const day = Math.floor((v as Date).getTime() / 86400000) * 86400000;
    return w instanceof Date && w.getTime() === day;
  },
  fromPg: readDate,
};

function timestampSpec(type: 'timestamp' | 'timestamptz'): ValueSpec {
  return {
    type,
    arb: orNull(dateArb),
    roundTrips: (v, w) => {
      if (v == null) return w === null;
      if (v === 'epoch') return w instanceof Date && w.getTime() === 0;
      if (typeof v === 'string') return w === v;
      return w instanceof Date && w.getTime() === (v as Date).getTime();
    },
    fromPg: readDate,
  };
}

/** uuid_in's accepted spellings */
const uuidArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) },
  { weight: 1, arbitrary: fc.uuid().map((u) => `{${u}}`) },
  { weight: 1, arbitrary: fc.uuid().map((u) => u.replace(/-/g, '')) },
  { weight: 1, arbitrary: fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'not-a-uuid', '') },
);

const uuidSpec: ValueSpec = {
  type: 'uuid',
  arb: orNull(uuidArb),
  roundTrips: (v, w) => {
    if (v == null) return w === null;
    const hex = (v as string).replace(/[{}-]/g, '').toLowerCase();
    return w === `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  },
  fromPg: (x) => x,
};

/**
 * Arrays of an element spec: one dimension with NULLs, rectangular 2-D and 3-D, empty, and
 * shapes PostgreSQL refuses ([[]], ragged) which must be typed errors.
 */
function arraySpec(elem: ValueSpec, elemArb: fc.Arbitrary<unknown> = elem.arb): ValueSpec {
  const item = fc.option(elemArb, { nil: null, freq: 6 });
  const rect = (rows: number, cols: number) => fc.array(fc.array(item, { minLength: cols, maxLength: cols }), { minLength: rows, maxLength: rows });
  const arb: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 6, arbitrary: fc.array(item, { maxLength: 8 }) },
    { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })).chain(([r, c]) => rect(r, c)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 }))
        .chain(([a, b, c]) => fc.array(fc.array(fc.array(item, { minLength: c, maxLength: c }), { minLength: b, maxLength: b }), { minLength: a, maxLength: a })),
    },
    { weight: 1, arbitrary: fc.constantFrom<unknown[]>([], [[]], [[], []], [[1], [2, 3]].map((r) => r.map(() => null))) },
    { weight: 1, arbitrary: fc.array(fc.array(item, { maxLength: 3 }), { minLength: 2, maxLength: 3 }) },
  );
  const mapLeaves = (x: unknown, f: (e: unknown) => unknown): unknown => (Array.isArray(x) ? x.map((e) => mapLeaves(e, f)) : x === null ? null : f(x));
  const rt = (v: unknown, w: unknown): boolean => {
    if (Array.isArray(v)) return Array.isArray(w) && w.length === v.length && v.every((e, i) => rt(e, w[i]));
    return v === null || v === undefined ? w === null : elem.roundTrips(v, w);
  };
  return {
    type: `${elem.type}[]`,
    arb: orNull(arb),
    roundTrips: (v, w) => (v == null ? w === null : rt(v, w)),
    fromPg: (x) => {
      if (x === null) return null;
      let missing = false;
      const out = mapLeaves(x, (e) => {
        const r = elem.fromPg(e);
        if (r === NO_ORACLE) missing = true;
        return r;
      });
      return missing ? NO_ORACLE : out;
    },
    toPg: (v) => (v == null ? v : mapLeaves(v, elem.toPg ?? ((e) => e))),
    allowedRefusal: elem.allowedRefusal,
  };
}

/** every type of the README's Values table, scalars and arrays */
export const VALUE_SPECS: ValueSpec[] = [
  intSpec('int2', 16),
  intSpec('int4', 32),
  int8Spec,
  float4Spec,
  float8Spec,
  numericSpec,
  boolSpec,
  textSpec('text'),
  textSpec('varchar'),
  byteaSpec,
  jsonSpec('json'),
  jsonSpec('jsonb'),
  dateSpec,
  timestampSpec('timestamp'),
  timestampSpec('timestamptz'),
  uuidSpec,
  arraySpec(intSpec('int4', 32)),
  arraySpec(int8Spec),
  arraySpec(float8Spec),
  arraySpec(numericSpec),
  arraySpec(boolSpec),
  arraySpec(textSpec('text')),
  arraySpec(byteaSpec),
  // an array element that is itself an array is a dimension, not a JSON array
  arraySpec(jsonSpec('jsonb'), jsonValueArb.filter((v) => !Array.isArray(v) && typeof v !== 'string')),
  arraySpec(dateSpec),
  arraySpec(timestampSpec('timestamptz')),
  arraySpec(uuidSpec),
];

// ----------------------------------------------------------------- PostgreSQL literals over the whole range

/** proleptic Gregorian civil date of a day count since 1970-01-01 (astronomical years) */
export function civil(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

const pad = (n: number | bigint, w = 2) => String(n).padStart(w, '0');

/** PostgreSQL's ISO text of a day (YYYY-MM-DD[ BC]) */
export function dayText(days: number): string {
  const [y, m, d] = civil(days);
  return `${pad(y <= 0 ? 1 - y : y, 4)}-${pad(m)}-${pad(d)}${y <= 0 ? ' BC' : ''}`;
}

/** PostgreSQL's ISO text of a timestamp given in microseconds since the epoch (UTC) */
export function timestampText(us: bigint, tz: boolean): string {
  const DAY = 86400000000n;
  let days = us / DAY;
  let rem = us % DAY;
  if (rem < 0n) {
    rem += DAY;
    days -= 1n;
  }
  const [y, m, d] = civil(Number(days));
  const secs = rem / 1000000n;
  const frac = (rem % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
  const time = `${pad(secs / 3600n)}:${pad((secs / 60n) % 60n)}:${pad(secs % 60n)}${frac ? '.' + frac : ''}`;
  return `${pad(y <= 0 ? 1 - y : y, 4)}-${pad(m)}-${pad(d)} ${time}${tz ? '+00' : ''}${y <= 0 ? ' BC' : ''}`;
}

/** PostgreSQL's range: 4714-11-24 00:00:00 BC .. 294276-12-31 23:59:59.999999, in µs since 1970 */
export const PG_TS_MIN_US = -210866803200000000n;
export const PG_TS_MAX_US = 9224318015999999999n;
/** date: 4714-11-24 BC .. 5874897-12-31, in days since 1970 */
export const PG_DATE_MIN_DAY = -2440588;
export const PG_DATE_MAX_DAY = 2145042905;

export interface PgLiteral {
  text: string;
  /** the instant in ms since 1970, rounded down (floor); +-Infinity for +-infinity */
  ms: number;
}

const msOf = (us: bigint): number => {
  const q = us / 1000n;
  return Number(us % 1000n < 0n ? q - 1n : q);
};

/** timestamp/timestamptz literals, microseconds included, anywhere in PostgreSQL's range */
export function timestampLiteralArb(tz: boolean): fc.Arbitrary<PgLiteral> {
  const us = fc.oneof(
    { weight: 4, arbitrary: fc.bigInt({ min: PG_TS_MIN_US, max: PG_TS_MAX_US }) },
    // JS's range, and sub-millisecond instants before and after 1970 (the rounding direction)
    { weight: 3, arbitrary: fc.bigInt({ min: PG_TS_MIN_US, max: 8640000000000000000n }) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.integer({ min: -3e12, max: 3e12 }), fc.integer({ min: 0, max: 999 }))
        .map(([ms, sub]) => BigInt(ms) * 1000n + BigInt(sub)),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        PG_TS_MIN_US, PG_TS_MAX_US, 0n, -1n, 1n, -500n, 999n, -999n,
        8640000000000000000n, 8640000000000000999n, 8640000000000001000n, PG_TS_MIN_US + 1n, PG_TS_MIN_US + 999n,
      ),
    },
  );
  return fc.oneof(
    { weight: 20, arbitrary: us.map((u) => ({ text: timestampText(u, tz), ms: msOf(u) })) },
    { weight: 1, arbitrary: fc.constantFrom({ text: 'infinity', ms: Infinity }, { text: '-infinity', ms: -Infinity }) },
  );
}

export function dateLiteralArb(): fc.Arbitrary<PgLiteral> {
  const day = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: PG_DATE_MIN_DAY, max: PG_DATE_MAX_DAY }) },
    // JS's range (up to 275760-09-13)
    { weight: 3, arbitrary: fc.integer({ min: PG_DATE_MIN_DAY, max: 100000000 }) },
    { weight: 2, arbitrary: fc.constantFrom(PG_DATE_MIN_DAY, PG_DATE_MAX_DAY, 0, -1, -719528, -719529, 100000000, 100000001) },
  );
  return fc.oneof(
    { weight: 20, arbitrary: day.map((d) => ({ text: dayText(d), ms: d * 86400000 })) },
    { weight: 1, arbitrary: fc.constantFrom({ text: 'infinity', ms: Infinity }, { text: '-infinity', ms: -Infinity }) },
  );
}

// ----------------------------------------------------------------- manifests

/** The fields the reader knows (docs/DESIGN.md), in the order it checks them. */
export const MANIFEST_FIELDS = [
  'format', 'name', 'database', 'role', 'restart', 'start', 'bundle', 'sha256', 'callers', 'searchPath', 'nodeTarget', 'heapLimitMb', 'bufferLimitMb',
  'autostart', 'instances',
] as const;
/** A key the reader is about to learn (bufferLimitMb, being added): kept out of the generated keys. */
const RESERVED_KEYS = new Set<string>(MANIFEST_FIELDS);

export type ManifestExpectation =
  | { kind: 'ignored' }
  | { kind: 'invalid'; reason: RegExp }
  | { kind: 'valid'; name: string; database: string; role: string | null; sha256: string | null; bundle: string; restart: number | 'never'; start: string; autostart: boolean; instances: number };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const WORKER_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;

/** Top-level keys of a JSON object text with their raw value texts, in document order. */
function topLevelMembers(text: string): [string, string][] {
  const out: [string, string][] = [];
  let depth = 0;
  let i = 0;
  let key: string | null = null;
  let valueStart = -1;
  const skipString = (j: number): number => {
    for (j++; text[j] !== '"'; j++) if (text[j] === '\\') j++;
    return j;
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = skipString(i);
      if (depth === 1 && key === null && valueStart < 0) {
        key = JSON.parse(text.slice(i, end + 1));
        i = end;
        continue;
      }
      i = end;
    } else if (c === ':' && depth === 1 && key !== null && valueStart < 0) {
      valueStart = i + 1;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']' || (c === ',' && depth === 1)) {
      if (depth === 1 && key !== null && valueStart >= 0) {
        out.push([key, text.slice(valueStart, i).trim()]);
        key = null;
        valueStart = -1;
      }
      if (c !== ',') depth--;
    }
  }
  return out;
}

/**
 * What the reader must do with a file `fileName` (bytes) holding `content` in directory `dir`,
 * from the rules of docs/DESIGN.md and README (hidden files and other extensions ignored; one
 * reason per invalid manifest, the first rule broken in the reader's order).
 */
export function expectManifest(fileName: Buffer, content: Buffer, dir: string): ManifestExpectation {
  const invalid = (reason: RegExp): ManifestExpectation => ({ kind: 'invalid', reason });
  const fname = fileName.toString('latin1');
  if (fname.startsWith('.') || fileName.length <= 5 || !fname.endsWith('.json')) return { kind: 'ignored' };
  const base = fileName.subarray(0, fileName.length - 5);
  if (base.length > 63) return invalid(/^file name is not a worker name followed by "\.json"$/);
  if (!WORKER_NAME.test(base.toString('latin1'))) return invalid(/^file name is not a valid worker name followed by "\.json"$/);
  const expectedName = base.toString('latin1');

  if (content.length > 64 * 1024) return invalid(/^manifest is larger than 64 kB$/);
  if (content.includes(0)) return invalid(/^manifest contains a NUL byte$/);
  let text: string;
  try {
    text = utf8.decode(content);
  } catch {
    return invalid(/^manifest is not valid UTF-8$/);
  }
  // nesting depth and \u escapes of non-ASCII characters, scanning as the reader does
  {
    let depth = 0;
    let inString = false;
    const raw = content.toString('latin1');
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i];
      if (inString) {
        if (c === '"') inString = false;
        else if (c === '\\' && i + 1 < raw.length) {
          i++;
          if (raw[i] === 'u' && i + 4 < raw.length) {
            const hex = raw.slice(i + 1, i + 5);
            const m = /^[0-9a-fA-F]*/.exec(hex)![0];
            if (m.length === 4 && parseInt(m, 16) > 0x7f) return invalid(/^manifest uses a \\u escape for a non-ASCII character/);
          }
        }
      } else if (c === '"') inString = true;
      else if (c === '[' || c === '{') {
        if (++depth > 32) return invalid(/^manifest is nested more than 32 levels deep$/);
      } else if ((c === ']' || c === '}') && depth > 0) depth--;
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return invalid(/^invalid JSON on line \d+: /);
  }
  // the backend's JSON parser refuses \u0000 in any string
  const hasNul = (v: unknown): boolean =>
    typeof v === 'string' ? v.includes('\0') : Array.isArray(v) ? v.some(hasNul) : v !== null && typeof v === 'object' ? Object.entries(v).some(([k, x]) => k.includes('\0') || hasNul(x)) : false;
  if (hasNul(doc)) return invalid(/^invalid JSON on line \d+: .*0000/);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return invalid(/^manifest must be a JSON object$/);

  const members = topLevelMembers(text);
  const seen = new Set<string>();
  for (const [k] of members) {
    if ((MANIFEST_FIELDS as readonly string[]).includes(k)) {
      if (seen.has(k)) return invalid(new RegExp(`^duplicate field "${k}"$`));
      seen.add(k);
    }
  }
  const raw = new Map(members);
  const isNumberToken = (t: string) => /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(t);
  const str = (field: string, required: boolean, nullable: boolean): { ok: false; why: RegExp } | { ok: true; value: string | null } => {
    const t = raw.get(field);
    if (t === undefined) return required ? { ok: false, why: new RegExp(`^missing field "${field}"$`) } : { ok: true, value: null };
    if (t.startsWith('"')) return { ok: true, value: JSON.parse(t) as string };
    if (nullable && t === 'null') return { ok: true, value: null };
    return { ok: false, why: new RegExp(`^field "${field}" must be a string${nullable ? ' or null' : ''}$`) };
  };

  const format = raw.get('format');
  if (format !== undefined) {
    if (!isNumberToken(format)) return invalid(/^field "format" must be a number$/);
    if (format !== '1') return invalid(/^unsupported manifest format /);
  }
  const name = str('name', true, false);
  if (!name.ok) return invalid(name.why);
  if (!WORKER_NAME.test(name.value!)) return invalid(/^field "name" is not a valid worker name/);
  if (name.value !== expectedName) return invalid(/^field "name" does not match the file name /);
  const database = str('database', true, false);
  if (!database.ok) return invalid(database.why);
  if (database.value === '') return invalid(/^field "database" must not be empty$/);
  if (bytes(database.value!) >= 64) return invalid(/^field "database" is longer than 63 bytes$/);
  const role = str('role', false, true);
  if (!role.ok) return invalid(role.why);
  if (role.value === '') return invalid(/^field "role" must be a non-empty string or null$/);
  if (role.value !== null && bytes(role.value) >= 64) return invalid(/^field "role" is longer than 63 bytes$/);
  const restartRaw = raw.get('restart');
  let restart: number | 'never';
  if (restartRaw === undefined) return invalid(/^missing field "restart"$/);
  if (restartRaw === '"never"') restart = 'never';
  else if (isNumberToken(restartRaw)) {
    if (!/^-?\d+$/.test(restartRaw)) return invalid(/^field "restart" must be an integer number of seconds or "never"$/);
    if (restartRaw.startsWith('-') || BigInt(restartRaw) > 86400n) return invalid(/^field "restart" must be between 0 and 86400 seconds, or "never"$/);
    restart = Number(restartRaw);
  } else return invalid(/^field "restart" must be an integer number of seconds or "never"$/);
  const start = str('start', true, false);
  if (!start.ok) return invalid(start.why);
  if (!['postmaster', 'consistent', 'recovery-finished'].includes(start.value!)) return invalid(/^field "start" must be "postmaster", "consistent" or "recovery-finished"$/);
  const bundle = str('bundle', true, false);
  if (!bundle.ok) return invalid(bundle.why);
  const b = bundle.value!;
  if (b === '') return invalid(/^field "bundle" must not be empty$/);
  for (const ch of Buffer.from(b, 'utf8')) {
    if (ch < 0x20 || ch >= 0x7f) return invalid(/^field "bundle" must contain only printable ASCII characters$/);
    if (ch === 0x2f || ch === 0x5c) return invalid(/^field "bundle" must be a plain file name in the worker directory, without "\/"$/);
  }
  if (b === '.' || b === '..') return invalid(/^field "bundle" must be a plain file name in the worker directory, not "\." or "\.\."$/);
  if (bytes(dir) + 1 + b.length >= 1024) return invalid(/^bundle path is too long$/);
  const sha = str('sha256', false, true);
  if (!sha.ok) return invalid(sha.why);
  if (sha.value !== null && !/^[0-9a-fA-F]{64}$/.test(sha.value)) return invalid(/^field "sha256" must be 64 hexadecimal digits or null$/);
  for (const [field, what] of [['callers', 'role'], ['searchPath', 'schema']] as const) {
    const list = str(field, false, true);
    if (!list.ok) return invalid(list.why);
    if (list.value === null) continue;
    if (bytes(list.value) >= 512) return invalid(new RegExp(`^field "${field}" is longer than 511 bytes$`));
    // "" is no name at all; otherwise every name between commas is 1 to 63 bytes
    if (list.value !== '' && list.value.split(',').some((n) => bytes(n) === 0 || bytes(n) >= 64))
      return invalid(new RegExp(`^field "${field}" must be ${what} names of 1 to 63 bytes separated by commas$`));
  }
  const target = str('nodeTarget', false, true);
  if (!target.ok) return invalid(target.why);
  if (target.value !== null) {
    const m = /^node(\d{1,6})(\.\d{1,6}){0,2}$/.exec(target.value);
    if (!m) return invalid(/^field "nodeTarget" must look like "node24" or "node24\.11"$/);
    if (Number(m[1]) === 0) return invalid(/^field "nodeTarget" must name a Node major version above 0$/);
  }
  for (const [field, max] of [['heapLimitMb', 65536n], ['bufferLimitMb', 1048576n]] as const) {
    const mb = raw.get(field);
    if (mb === undefined || mb === 'null') continue;
    if (!isNumberToken(mb)) return invalid(new RegExp(`^field "${field}" must be an integer number of megabytes or null$`));
    if (!/^-?\d+$/.test(mb) || BigInt(mb) < 16n || BigInt(mb) > max) return invalid(new RegExp(`^field "${field}" must be an integer from 16 to ${max}$`));
  }
  const autostart = raw.get('autostart');
  if (autostart !== undefined && autostart !== 'true' && autostart !== 'false') return invalid(/^field "autostart" must be true or false$/);
  const instancesRaw = raw.get('instances');
  let instances = 1;
  if (instancesRaw !== undefined) {
    if (!isNumberToken(instancesRaw) || !/^-?\d+$/.test(instancesRaw) || BigInt(instancesRaw) < 1n || BigInt(instancesRaw) > 1024n)
      return invalid(/^field "instances" must be an integer from 1 to 1024$/);
    instances = Number(instancesRaw);
    if (instances > 1 && autostart === 'false') return invalid(/^field "instances" must be 1 when "autostart" is false$/);
  }
  return {
    kind: 'valid',
    name: name.value!,
    database: database.value!,
    role: role.value,
    sha256: sha.value === null ? null : sha.value.toLowerCase(),
    bundle: b,
    restart,
    start: start.value!,
    autostart: autostart !== 'false',
    instances,
  };
}

/** A text mutation, positions as fractions of the text's length. */
export type Mutation =
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'replace'; at: number; byte: number }
  | { op: 'delete'; at: number; n: number }
  | { op: 'duplicate'; field: string; value: unknown }
  | { op: 'escape' }
  | { op: 'bom' }
  | { op: 'nest'; depth: number }
  | { op: 'pad'; to: number };

export interface ManifestCase {
  /** how the file is named: the worker's name (`ok`), another valid name, or a bad file name */
  file: { kind: 'ok' } | { kind: 'other' } | { kind: 'raw'; name: Buffer } | { kind: 'long'; unit: string };
  content:
    | { kind: 'manifest'; fields: Record<string, unknown>; nameField: 'same' | 'other' | 'absent' | { raw: unknown }; pretty: boolean; mutations: Mutation[] }
    | { kind: 'json'; value: unknown }
    | { kind: 'bytes'; bytes: Uint8Array };
  /** M2: leave the bundle file out */
  noBundle: boolean;
}

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 24 });

/** the fields of a valid manifest, besides name */
const validFields: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      format: fc.constant(1),
      database: fc.oneof(
        { weight: 3, arbitrary: fc.constant('postgres') },
        { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }) },
        { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }) },
      ),
      role: fc.option(fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), { nil: null }),
      restart: fc.oneof(fc.integer({ min: 0, max: 86400 }), fc.constantFrom(0, 86400, 'never')),
      start: fc.constantFrom('postmaster', 'consistent', 'recovery-finished'),
      bundle: fc.oneof(
        { weight: 4, arbitrary: printable.map((s) => s.replace(/[/\\]/g, '_') + '.js') },
        { weight: 1, arbitrary: fc.constantFrom('a.js', '...js', ' .js', 'x y".js', "it's.js", '.hidden.js', '-.js') },
      ),
      sha256: fc.option(fc.stringMatching(/^[0-9a-fA-F]{64}$/), { nil: null }),
      callers: fc.option(fc.string({ unit: 'grapheme-ascii', maxLength: 40 }), { nil: null }),
      heapLimitMb: fc.option(fc.oneof(fc.integer({ min: 16, max: 65536 }), fc.constantFrom(16, 65536)), { nil: null }),
      bufferLimitMb: fc.option(fc.oneof(fc.integer({ min: 16, max: 1048576 }), fc.constantFrom(16, 1048576)), { nil: null }),
      autostart: fc.boolean(),
      // few: the valid ones of a batch must fit in node_worker.max_workers together
      instances: fc.constantFrom(1, 1, 1, 2),
      deployedAt: fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString()),
      searchPath: fc.option(fc.oneof(fc.constantFrom('', 'pg_catalog', 'public,$user', ',', 'a,,b'), fc.string({ unit: 'grapheme-ascii', maxLength: 40 })), { nil: null }),
      nodeTarget: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom('node18', 'node18.20.4', 'node24.11', 'node99') },
        { weight: 1, arbitrary: fc.constantFrom('node', 'node0', 'v18', 'node18.x', 'node1.2.3.4', 'node1234567', '18') },
      ),
    },
    { requiredKeys: ['database', 'restart', 'start', 'bundle'] },
  )
  .chain((r) =>
    fc
      .dictionary(
        fc.string({ unit: textUnit, maxLength: 12 }).filter((k) => !RESERVED_KEYS.has(k)),
        fc.jsonValue({ maxDepth: 2 }),
        { maxKeys: 3 },
      )
      .map((extra) => ({ ...extra, ...r })),
  )
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));

/** JSON values that break one field (or nothing: an unknown key's business) */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '', 'never', 'nEver', -1, 86401, 1.5, 1e3, 2 ** 63, '..', '.', '../x.js', '/abs.js', 'a\\b.js', 'x\n.js', 'é.js', 'a/b', '9lives',
      'x'.repeat(64), 'x'.repeat(70), 'x'.repeat(512), 'x'.repeat(1010), '0'.repeat(64), 'G'.repeat(64), 'a'.repeat(63), 2, 15, 65537, 0, null, true, [], {},
    ),
  },
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ op: fc.constant('replace' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('duplicate' as const), field: fc.constantFrom(...MANIFEST_FIELDS), value: badValue }),
  fc.record({ op: fc.constant('escape' as const) }),
  fc.record({ op: fc.constant('bom' as const) }),
  fc.record({ op: fc.constant('nest' as const), depth: fc.integer({ min: 28, max: 36 }) }),
  fc.record({ op: fc.constant('pad' as const), to: fc.integer({ min: 65530, max: 65542 }) }),
);

/** valid ones, as the CLI writes them or by hand */
const validContent: fc.Arbitrary<ManifestCase['content']> = fc.record({
  kind: fc.constant('manifest' as const),
  fields: validFields,
  nameField: fc.constant('same' as const),
  pretty: fc.boolean(),
  mutations: fc.constant([] as Mutation[]),
});

const manifestContent: fc.Arbitrary<ManifestCase['content']> = fc.oneof(
  { weight: 4, arbitrary: validContent },
  // one field removed or set to another JSON value, and/or a few text mutations
  {
    weight: 6,
    arbitrary: fc
      .tuple(validFields, fc.constantFrom(...MANIFEST_FIELDS, 'unknown'), fc.option(badValue, { nil: undefined }), fc.boolean(), fc.array(mutation, { maxLength: 2 }))
      .map(([fields, field, value, pretty, mutations]) => {
        const f: Record<string, unknown> = { ...fields };
        let nameField: 'same' | 'other' | 'absent' | { raw: unknown } = 'same';
        if (field === 'name') nameField = value === undefined ? 'absent' : { raw: value };
        else if (value === undefined) delete f[field];
        else f[field] = value;
        return { kind: 'manifest' as const, fields: f, nameField, pretty, mutations };
      }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue({ stringUnit: jsonStringUnit }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 120 }) }) },
);

/** file names whose first 63 bytes (what node_worker.workers shows) are valid UTF-8 */
const plainFile: fc.Arbitrary<ManifestCase['file']> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ kind: 'ok' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'other' as const }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('9lives', 'a.b', '-x', 'h\u00e9llo', 'x'.repeat(64), '', '.hidden', 'ok.json.tmp', 'UP.JSON', 'x.js', ' ')
      .map((s) => ({ kind: 'raw' as const, name: Buffer.from(s) })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'long' as const, unit: 'x' }) },
);

/** any bytes a Linux file name may hold (no '/', no NUL), and long names of multi-byte characters */
const oddFile: fc.Arbitrary<ManifestCase['file']> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 20 })
      .map((b) => ({ kind: 'raw' as const, name: Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x5f : x))) })),
  },
  // longer than 63 bytes: cut by the view somewhere
  { weight: 1, arbitrary: fc.constantFrom('\u00e9', '\u20ac', '\u{1F600}', 'x').map((unit) => ({ kind: 'long' as const, unit })) },
);

const noBundle = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
export const manifestCaseArb: fc.Arbitrary<ManifestCase> = fc.record({ file: plainFile, content: manifestContent, noBundle });
/** a valid manifest under its own name, with its bundle */
export const validManifestCaseArb: fc.Arbitrary<ManifestCase> = fc.record({
  file: fc.constant({ kind: 'ok' as const }),
  content: validContent,
  noBundle: fc.constant(false),
});
export const oddFileNameCaseArb: fc.Arbitrary<ManifestCase> = fc.record({ file: oddFile, content: manifestContent, noBundle });

function applyMutation(buf: Buffer, m: Mutation): Buffer {
  const pos = (at: number) => Math.min(buf.length, Math.floor(at * buf.length));
  switch (m.op) {
    case 'truncate':
      return buf.subarray(0, pos(m.at));
    case 'insert':
      return Buffer.concat([buf.subarray(0, pos(m.at)), Buffer.from(m.bytes), buf.subarray(pos(m.at))]);
    case 'replace': {
      const out = Buffer.from(buf);
      if (out.length) out[Math.min(out.length - 1, pos(m.at))] = m.byte;
      return out;
    }
    case 'delete':
      return Buffer.concat([buf.subarray(0, pos(m.at)), buf.subarray(pos(m.at) + m.n)]);
    case 'duplicate': {
      const i = buf.indexOf('{');
      if (i < 0) return buf;
      return Buffer.concat([buf.subarray(0, i + 1), Buffer.from(`${JSON.stringify(m.field)}: ${JSON.stringify(m.value)}, `), buf.subarray(i + 1)]);
    }
    case 'escape': {
      // the first non-ASCII character as a \u escape (JSON allows it; the reader refuses it)
      const s = buf.toString('utf8');
      const i = [...s].findIndex((c) => c.codePointAt(0)! > 0x7f);
      if (i < 0) return Buffer.from(s.replace(/"([a-z])/, (_, ch: string) => `"\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`));
      const chars = [...s];
      const c = chars[i];
      chars[i] = [...c].length === 1 && c.length === 2 ? `\\u${c.charCodeAt(0).toString(16)}\\u${c.charCodeAt(1).toString(16)}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
      return Buffer.from(chars.join(''));
    }
    case 'bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), buf]);
    case 'nest': {
      const i = buf.lastIndexOf('}');
      if (i < 0) return buf;
      const deep = `, "deep": ${'['.repeat(m.depth - 1)}${']'.repeat(m.depth - 1)}`;
      return Buffer.concat([buf.subarray(0, i), Buffer.from(deep), buf.subarray(i)]);
    }
    case 'pad': {
      const i = buf.lastIndexOf('}');
      if (i < 0) return buf;
      const room = m.to - buf.length - `, "padding": ""`.length;
      if (room < 0) return buf;
      return Buffer.concat([buf.subarray(0, i), Buffer.from(`, "padding": "${'p'.repeat(room)}"`), buf.subarray(i)]);
    }
  }
}

/** The file name (bytes) and content of a case, for worker name `name` (a valid, unique name). */
export function renderManifest(c: ManifestCase, name: string): { fileName: Buffer; content: Buffer } {
  let fileName: Buffer;
  switch (c.file.kind) {
    case 'ok':
      fileName = Buffer.from(`${name}.json`);
      break;
    case 'other':
      fileName = Buffer.from(`${name}_other.json`);
      break;
    case 'raw':
      // made unique by the worker name, still not a valid one
      fileName = Buffer.concat([c.file.name, Buffer.from(`.${name}.json`)]);
      break;
    case 'long':
      fileName = Buffer.from(`${name}${c.file.unit.repeat(60)}.json`);
      break;
  }
  let content: Buffer;
  switch (c.content.kind) {
    case 'json':
      content = Buffer.from(JSON.stringify(c.content.value));
      break;
    case 'bytes':
      content = Buffer.from(c.content.bytes);
      break;
    case 'manifest': {
      const m = c.content;
      const entries: [string, unknown][] = [];
      if (m.nameField === 'same') entries.push(['name', name]);
      else if (m.nameField === 'other') entries.push(['name', `${name}x`]);
      else if (m.nameField !== 'absent') entries.push(['name', m.nameField.raw]);
      for (const [k, v] of Object.entries(m.fields)) if (k !== 'name') entries.push([k, v]);
      // fromEntries: a "__proto__" key stays a key
      const doc = Object.fromEntries(entries);
      content = Buffer.from(JSON.stringify(doc, null, m.pretty ? 2 : undefined));
      for (const mu of m.mutations) content = applyMutation(content, mu);
      break;
    }
  }
  return { fileName, content };
}
