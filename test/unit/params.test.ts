/**
 * Parameter serialisation without a server: what the runtime hands the bridge for each JS value
 * and parameter type (src/runtime/params.ts, the rules of src/runtime/pgtypes.ts).
 */
import { describe, expect, it } from 'vitest';
import { OID } from '../../src/runtime/oids';
import { arrayLiteral, dateText, scalarText, serializeParam, serializeParams, timestampText } from '../../src/runtime/params';
import { DEFAULT_RULE, paramRuleOf, TYPE_FAMILIES } from '../../src/runtime/pgtypes';
import { templateText } from '../../src/runtime/sql';

const { BOOL, BYTEA, DATE, FLOAT4, FLOAT8, INT2, INT4, INT8, JSON: JSON_OID, JSONB, NUMERIC, TEXT, TIMESTAMP, TIMESTAMPTZ, UUID } = OID;
/** a scalar parameter of type t */
const scalar = (v: unknown, t: number) => serializeParam(v, t, 0);

describe('the type table', () => {
  it('lists each OID once, each a built-in type', () => {
    const oids = TYPE_FAMILIES.flatMap((f) => f.oids);
    expect(new Set(oids).size).toBe(oids.length);
    const known = new Set<number>(Object.values(OID));
    for (const oid of oids) expect(known.has(oid), String(oid)).toBe(true);
  });

  it('gives unlisted types the default rule', () => {
    expect(paramRuleOf(TEXT)).toBe(DEFAULT_RULE);
    expect(paramRuleOf(0)).toBe(DEFAULT_RULE);
    expect(paramRuleOf(INT8)).toMatchObject({ family: 'integer', number: 'integer', date: 'iso', json: false, bytes: 'hex' });
    expect(paramRuleOf(JSONB)).toMatchObject({ family: 'json', json: true });
  });

  it('names the OIDs the catalog gives them', () => {
    expect({ BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON_OID, FLOAT4, FLOAT8, DATE, TIMESTAMP, TIMESTAMPTZ, NUMERIC, JSONB }).toEqual({
      BOOL: 16, BYTEA: 17, INT8: 20, INT2: 21, INT4: 23, TEXT: 25, JSON_OID: 114, FLOAT4: 700, FLOAT8: 701,
      DATE: 1082, TIMESTAMP: 1114, TIMESTAMPTZ: 1184, NUMERIC: 1700, JSONB: 3802,
    });
    expect(OID.INT4_ARRAY).toBe(1007);
  });
});

describe('serializeParam: scalars', () => {
  it('sends null for null and undefined, whatever the type', () => {
    for (const t of [INT4, TEXT, JSONB, BYTEA]) {
      expect(scalar(null, t)).toBeNull();
      expect(scalar(undefined, t)).toBeNull();
    }
  });

  it('sends numbers as numbers to integer and float types, as text to the others', () => {
    for (const t of [INT2, INT4, INT8, FLOAT4, FLOAT8]) expect(scalar(42.5, t)).toBe(42.5);
    expect(scalar(2 ** 60, INT8)).toBe(2 ** 60);
    expect(scalar(1.5, NUMERIC)).toBe('1.5');
    expect(scalar(1e21, NUMERIC)).toBe('1e+21');
    expect(scalar(-0, NUMERIC)).toBe('0');
    expect(scalar(3, TEXT)).toBe('3');
    expect(scalar(NaN, NUMERIC)).toBe('NaN');
  });

  it('sends booleans, bigints and strings as they are', () => {
    expect(scalar(true, BOOL)).toBe(true);
    expect(scalar(false, TEXT)).toBe(false);
    expect(scalar(12345678901234567890n, INT8)).toBe(12345678901234567890n);
    expect(scalar(12345678901234567890n, NUMERIC)).toBe(12345678901234567890n);
    expect(scalar('x', INT4)).toBe('x');
  });

  it('sends bytes as bytes to bytea, as hex text to other types', () => {
    const bytes = new Uint8Array([0, 1, 0xab, 0xff]);
    expect(scalar(bytes, BYTEA)).toBe(bytes);
    expect(scalar(bytes, TEXT)).toBe('\\x0001abff');
    // a view into a larger buffer: only its own bytes
    expect(scalar(new Uint8Array(bytes.buffer, 1, 2), TEXT)).toBe('\\x01ab');
    expect(scalar(Buffer.from('hi'), TEXT)).toBe('\\x6869');
  });

  it('sends a Date as its UTC day to date, as a UTC timestamp to timestamp types, else as ISO text', () => {
    const d = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    expect(scalar(d, DATE)).toBe('2024-01-02');
    expect(scalar(d, TIMESTAMP)).toBe('2024-01-02 03:04:05.006+00');
    expect(scalar(d, TIMESTAMPTZ)).toBe('2024-01-02 03:04:05.006+00');
    expect(scalar(d, TEXT)).toBe('2024-01-02T03:04:05.006Z');
  });

  it('writes years PostgreSQL reads: BC for year 0 and before, five digits after 9999', () => {
    const year0 = new Date(Date.UTC(2000, 5, 7));
    year0.setUTCFullYear(0);
    expect(dateText(year0)).toBe('0001-06-07 BC');
    expect(timestampText(year0)).toBe('0001-06-07 00:00:00.000+00 BC');
    const minus1 = new Date(Date.UTC(2000, 0, 1));
    minus1.setUTCFullYear(-1);
    expect(dateText(minus1)).toBe('0002-01-01 BC');
    const big = new Date(Date.UTC(10000, 0, 1));
    expect(dateText(big)).toBe('10000-01-01');
    expect(timestampText(big)).toBe('10000-01-01 00:00:00.000+00');
    const year33 = new Date(Date.UTC(2000, 1, 3));
    year33.setUTCFullYear(33);
    expect(dateText(year33)).toBe('0033-02-03');
  });

  it('refuses an invalid Date, a function and a symbol', () => {
    for (const t of [DATE, TIMESTAMPTZ, TEXT]) expect(() => scalar(new Date(NaN), t)).toThrow('an invalid Date cannot be sent to PostgreSQL');
    expect(() => scalar(() => 1, TEXT)).toThrow(new TypeError('a function cannot be sent to PostgreSQL'));
    expect(() => scalar(Symbol('s'), INT4)).toThrow(new TypeError('a symbol cannot be sent to PostgreSQL'));
  });

  it('sends JSON text to json and jsonb: strings as they are, anything else stringified', () => {
    for (const t of [JSON_OID, JSONB]) {
      expect(scalar('{"a":1}', t)).toBe('{"a":1}');
      expect(scalar({ a: [1, 'x'] }, t)).toBe('{"a":[1,"x"]}');
      expect(scalar([1, 2], t)).toBe('[1,2]');
      expect(scalar(5, t)).toBe('5');
      expect(scalar(true, t)).toBe('true');
      expect(scalar(new Date(Date.UTC(2024, 0, 1)), t)).toBe('"2024-01-01T00:00:00.000Z"');
      expect(() => scalar(() => 1, t)).toThrow(new TypeError('a function cannot be sent as JSON'));
      expect(() => scalar(Symbol('s'), t)).toThrow(new TypeError('a symbol cannot be sent as JSON'));
    }
    expect(() => scalar(1n, JSONB)).toThrow(TypeError);
  });

  it('sends other objects to other types as their JSON', () => {
    expect(scalar({ a: 1 }, TEXT)).toBe('{"a":1}');
    expect(scalar([1, 'two'], TEXT)).toBe('[1,"two"]');
    expect(scalar({ toJSON: () => 'x' }, UUID)).toBe('"x"');
  });
});

describe('serializeParam: arrays', () => {
  const array = (v: unknown, elem: number) => serializeParam(v, 0, elem);

  it('writes an array literal with every element quoted and NULL for null', () => {
    expect(array([1, null, 3, undefined], INT4)).toBe('{"1",NULL,"3",NULL}');
    expect(array([], TEXT)).toBe('{}');
    expect(array(['a', 'b c', ''], TEXT)).toBe('{"a","b c",""}');
  });

  it('escapes quotes and backslashes in elements', () => {
    expect(array(['say "hi"', 'a\\b', '{,}'], TEXT)).toBe('{"say \\"hi\\"","a\\\\b","{,}"}');
  });

  it('nests arrays', () => {
    expect(array([[1, 2], [3, null]], INT4)).toBe('{{"1","2"},{"3",NULL}}');
  });

  it('writes elements by the element type', () => {
    expect(array([2 ** 60, 2 ** 53 + 2, 1.5], INT8)).toBe(`{"${2n ** 60n}","9007199254740994","1.5"}`);
    expect(array([2 ** 60], NUMERIC)).toBe('{"1152921504606847000"}');
    expect(array([-0, 0], FLOAT8)).toBe('{"-0","0"}');
    expect(array([-0], INT4)).toBe('{"0"}');
    const d = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    expect(array([d], DATE)).toBe('{"2024-01-02"}');
    expect(array([d], TIMESTAMPTZ)).toBe('{"2024-01-02 03:04:05.006+00"}');
    expect(array([d], TEXT)).toBe('{"2024-01-02T03:04:05.006Z"}');
    expect(array([new Uint8Array([1, 2])], BYTEA)).toBe('{"\\\\x0102"}');
    expect(array([{ a: 1 }, 'raw'], JSONB)).toBe('{"{\\"a\\":1}","raw"}');
    expect(array([true, 5n], TEXT)).toBe('{"true","5"}');
  });

  it('refuses elements PostgreSQL cannot take', () => {
    expect(() => array([new Date(NaN)], DATE)).toThrow('an invalid Date cannot be sent to PostgreSQL');
    expect(() => array([() => 1], TEXT)).toThrow('a function cannot be sent to PostgreSQL');
    expect(() => array([{ toJSON: () => undefined }], JSONB)).toThrow('an object whose JSON is undefined cannot be sent to PostgreSQL');
  });

  it('treats a JS array for a type that is not an array type as an object', () => {
    expect(scalar([1, 2], TEXT)).toBe('[1,2]');
    expect(scalar([1, 2], JSONB)).toBe('[1,2]');
  });

  it('takes a non-array value for an array type by the array type itself', () => {
    expect(serializeParam('{1,2}', OID.INT4_ARRAY, INT4)).toBe('{1,2}');
    expect(serializeParam(null, OID.INT4_ARRAY, INT4)).toBeNull();
  });

  it('scalarText and arrayLiteral are the element writers', () => {
    expect(scalarText(null, INT4)).toBeNull();
    expect(scalarText(7, INT4)).toBe('7');
    expect(arrayLiteral([1, [2]], INT4)).toBe('{"1",{"2"}}');
  });
});

describe('serializeParams', () => {
  it('serialises each value by its parameter type; null when there are none', () => {
    expect(serializeParams([], [], [])).toBeNull();
    expect(serializeParams([1, 'x', [1, 2], { a: 1 }], [INT4, TEXT, OID.INT4_ARRAY, JSONB], [0, 0, INT4, 0])).toEqual([1, 'x', '{"1","2"}', '{"a":1}']);
  });

  it('refuses another number of values than the statement takes', () => {
    expect(() => serializeParams([1], [INT4, INT4], [0, 0])).toThrow(new TypeError('the statement takes 2 parameters but 1 were given'));
    expect(() => serializeParams([1], [], [])).toThrow('the statement takes 0 parameters but 1 were given');
  });
});

describe('templateText', () => {
  const tag = (strings: TemplateStringsArray, ..._values: unknown[]) => templateText(strings);

  it('numbers the values $1, $2, ...', () => {
    expect(tag`SELECT 1`).toBe('SELECT 1');
    expect(tag`SELECT ${1} + ${2}, ${'x'}`).toBe('SELECT $1 + $2, $3');
  });

  it('refuses a call that is not a tagged template', () => {
    expect(() => templateText(['SELECT 1'] as unknown as TemplateStringsArray)).toThrow(/tagged template/);
    expect(() => templateText('SELECT 1' as unknown as TemplateStringsArray)).toThrow(/tagged template/);
  });
});
