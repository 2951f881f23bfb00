/**
 * Building statements from pieces without a server (src/runtime/fragments.ts): identifier
 * quoting, bulk-insert expansion, fragments spliced in with their parameters renumbered, and the
 * refusals of bad input. The server's view of the same text is test/sqlhelpers.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FragmentBuilder, MAX_PARAMS, piecesText, quoteIdentifier } from '../../src/runtime/fragments';
import type { SqlFragment } from '../../src/types';
import { runs } from '../helpers/fc';

const b = new FragmentBuilder();
/** `sql(...)` called as a function */
const sql = (first: unknown, ...rest: unknown[]) => b.helper(first, rest);
/** `sql.fragment\`...\`` */
const frag = (strings: TemplateStringsArray, ...values: unknown[]) => b.fragment(strings, values);
/** the statement a template composes: text and values (the template as it is when it holds no fragment) */
const stmt = (strings: TemplateStringsArray, ...values: unknown[]) => {
  const c = b.compose(strings, values);
  return c ?? { text: piecesText({ parts: strings, values }), values };
};
const text = (f: SqlFragment) => piecesText(b.inspect(f));

/** a TemplateStringsArray made at run time (the property tests build random templates) */
function templateOf(parts: string[]): TemplateStringsArray {
  return Object.assign([...parts], { raw: [...parts] }) as unknown as TemplateStringsArray;
}

describe('sql(identifier)', () => {
  it('double-quotes, doubling embedded quotes', () => {
    expect(text(sql('t'))).toBe('"t"');
    expect(text(sql('My Table'))).toBe('"My Table"');
    expect(text(sql('a"b'))).toBe('"a""b"');
    expect(text(sql('"'))).toBe('""""');
    expect(text(sql("x'; DROP TABLE t; --"))).toBe(`"x'; DROP TABLE t; --"`);
    expect(text(sql('back\\slash'))).toBe('"back\\slash"');
    expect(text(sql('ünï €'))).toBe('"ünï €"');
  });

  it('qualifies with an array of names', () => {
    expect(text(sql(['public', 'jobs']))).toBe('"public"."jobs"');
    expect(text(sql(['db', 's"x', 't']))).toBe('"db"."s""x"."t"');
  });

  it('refuses empty names, U+0000, lone surrogates and non-strings with TypeErrors saying what to do', () => {
    expect(() => sql('')).toThrow(new TypeError('sql(identifier): an identifier cannot be empty (PostgreSQL has no zero-length names)'));
    expect(() => sql('a\0b')).toThrow(/cannot contain U\+0000/);
    expect(() => sql('\uD800x')).toThrow(/lone UTF-16 surrogate/);
    expect(() => sql('x\uDC00')).toThrow(/lone UTF-16 surrogate/);
    expect(() => sql(['s', ''])).toThrow(/sql\(\[\.\.\.names\]\): an identifier cannot be empty/);
    expect(() => sql(['s', 1])).toThrow(/must be a string, got number/);
    expect(() => sql([])).toThrow(TypeError);
    expect(() => sql('a', 'b')).toThrow(/sql\(\['schema', 'table'\]\)/);
    expect(() => sql(1)).toThrow(/tagged template/);
    expect(() => sql(null)).toThrow(TypeError);
    expect(() => sql(undefined)).toThrow(TypeError);
    expect(() => sql([1, 2])).toThrow(/= ANY\(\$\{array\}\)/);
  });

  it('quotes any well-formed string without U+0000 so that unquoting gives it back', () => {
    const unquote = (q: string) => {
      expect(q.startsWith('"') && q.endsWith('"')).toBe(true);
      const inner = q.slice(1, -1);
      // inside, every quote is doubled: no lone quote can end the identifier early
      expect(inner.replace(/""/g, '')).not.toContain('"');
      return inner.replace(/""/g, '"');
    };
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1 }).filter((s) => !s.includes('\0')), (s) => {
        expect(unquote(quoteIdentifier(s))).toBe(s);
      }),
      runs(500),
    );
  });
});

describe('sql(rows, ...columns)', () => {
  const rows = [
    { a: 1, b: 'x', c: true },
    { a: 2, b: 'y', c: false },
  ];

  it('expands named columns', () => {
    const s = stmt`INSERT INTO t ${sql(rows, 'a', 'b')}`;
    expect(s.text).toBe('INSERT INTO t ("a","b") VALUES ($1,$2),($3,$4)');
    expect(s.values).toEqual([1, 'x', 2, 'y']);
  });

  it('takes the first row keys when no columns are named, in their order', () => {
    const s = stmt`INSERT INTO t ${sql(rows)} RETURNING ${1}`;
    expect(s.text).toBe('INSERT INTO t ("a","b","c") VALUES ($1,$2,$3),($4,$5,$6) RETURNING $7');
    expect(s.values).toEqual([1, 'x', true, 2, 'y', false, 1]);
    // the same keys in another order are the same columns
    expect(stmt`${sql([{ a: 1, b: 2 }, { b: 4, a: 3 }])}`.values).toEqual([1, 2, 3, 4]);
  });

  it('takes one object as one row, and quotes column names', () => {
    const s = stmt`INSERT INTO t ${sql({ 'odd "col"': 1, n: null, u: undefined })}`;
    expect(s.text).toBe('INSERT INTO t ("odd ""col""","n","u") VALUES ($1,$2,$3)');
    expect(s.values).toEqual([1, null, undefined]);
  });

  it('refuses mixed keys, no rows, no columns, missing columns, non-object rows', () => {
    expect(() => sql([{ a: 1, b: 2 }, { a: 1, c: 2 }])).toThrow(/row 1 has keys \(a, c\) but row 0 has \(a, b\); give every row the same keys/);
    expect(() => sql([{ a: 1 }, { a: 1, b: 2 }])).toThrow(/row 1 has keys/);
    expect(() => sql([])).toThrow(/no rows to insert/);
    expect(() => sql([{}])).toThrow(/no columns/);
    expect(() => sql([{ a: 1 }, { b: 1 }], 'a')).toThrow(/row 1 has no key "a"; give it a: null for NULL/);
    expect(() => sql([{ a: 1 }], 'a', 'a')).toThrow(/named twice/);
    expect(() => sql([{ a: 1 }], '')).toThrow(/cannot be empty/);
    expect(() => sql([{ a: 1 }, null])).toThrow(/row 1 is null/);
    expect(() => sql([{ a: 1 }, [1]])).toThrow(/row 1 is an array/);
    expect(() => sql(['a'], 'x')).toThrow(/takes nothing more/);
    expect(() => sql([{ a: 1 }, { a: sql('now') }])).toThrow(/row 1, column "a" holds an SQL fragment/);
  });

  it('refuses more than 65535 parameters with a RangeError naming a batch size', () => {
    const many = Array.from({ length: 32768 }, (_, i) => ({ a: i, b: i }));
    expect(() => sql(many)).toThrow(new RangeError(`sql(rows): 32768 rows × 2 columns is 65536 parameters, over PostgreSQL's ${MAX_PARAMS}; insert in batches of at most 32767 rows`));
    expect(b.inspect(sql(Array.from({ length: MAX_PARAMS }, (_, i) => ({ a: i })))).values.length).toBe(MAX_PARAMS);
    expect(() => sql(Array.from({ length: MAX_PARAMS + 1 }, (_, i) => ({ a: i })))).toThrow(RangeError);
    // the limit holds for the whole statement too
    const half = sql(many.slice(0, 16384));
    expect(() => stmt`${half} ${half}`).toThrow(RangeError);
  });
});

describe('sql.fragment and composition', () => {
  it('numbers the parameters of nested fragments in order', () => {
    const inner = frag`b = ${2} AND c = ${3}`;
    const where = frag`WHERE a = ${1} AND ${inner}`;
    const s = stmt`SELECT * FROM ${sql('t')} ${where} LIMIT ${4}`;
    expect(s.text).toBe('SELECT * FROM "t" WHERE a = $1 AND b = $2 AND c = $3 LIMIT $4');
    expect(s.values).toEqual([1, 2, 3, 4]);
  });

  it('lets an empty fragment add nothing', () => {
    const none = frag``;
    const s = stmt`SELECT ${1}${none} FROM t ${none}`;
    expect(s.text).toBe('SELECT $1 FROM t ');
    expect(s.values).toEqual([1]);
  });

  it('reuses a fragment: each use is numbered where it stands', () => {
    const f = frag`x = ${'v'}`;
    expect(stmt`${f} OR ${f}`).toEqual({ text: 'x = $1 OR x = $2', values: ['v', 'v'] });
  });

  it('leaves a template without fragments alone', () => {
    expect(b.compose(templateOf(['SELECT ', '']), [1])).toBeNull();
  });

  it('refuses a fragment of another builder and a forged one', () => {
    const other = new FragmentBuilder();
    const foreign = other.helper('t', []);
    expect(() => stmt`SELECT * FROM ${foreign}`).toThrow(/not made by this worker's sql/);
    expect(() => frag`x ${foreign}`).toThrow(/not made by this worker's sql/);
    const forged = Object.create(Object.getPrototypeOf(sql('t')));
    expect(() => stmt`SELECT * FROM ${forged}`).toThrow(TypeError);
    // a look-alike plain object is a value (a JSON parameter), never text
    const lookalike = { parts: ['DROP TABLE t'], values: [] };
    expect(stmt`SELECT ${lookalike}`).toEqual({ text: 'SELECT $1', values: [lookalike] });
  });

  it('refuses a fragment where it would be sent as a value', () => {
    expect(() => JSON.stringify([sql('t')])).toThrow(/cannot be sent as a value/);
    expect(String(sql('t'))).toBe('[SQL fragment]');
  });

  it('says so when a fragment is read as a result (sql(text) called where sql`text` was meant)', () => {
    const f = sql('SELECT 1') as unknown as unknown[] & { count: number };
    expect(() => f[0]).toThrow(/not a result: sql\(\.\.\.\) called as a function quotes an identifier/);
    expect(() => f.length).toThrow(/sql\.unsafe\(text\)/);
    expect(() => f.count).toThrow(TypeError);
    expect(() => [...f]).toThrow(TypeError);
    // an async function may still return one
    return expect(Promise.resolve(sql('t')).then((x) => String(x))).resolves.toBe('[SQL fragment]');
  });

  it('refuses a fragment tag used as a function', () => {
    expect(() => b.fragment(['x'] as unknown as TemplateStringsArray, [])).toThrow(/tagged template/);
  });

  /** a random tree of fragments: text between values, each value a leaf or another fragment */
  type Tree = { texts: string[]; kids: (number | Tree)[] };
  const segment = fc.stringMatching(/^[a-z =()]{0,6}$/);
  const tree: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree; kid: number | Tree }>((tie) => ({
    tree: fc
      .array(tie('kid'), { maxLength: 4 })
      .chain((kids) => fc.array(segment, { minLength: kids.length + 1, maxLength: kids.length + 1 }).map((texts) => ({ texts, kids }))),
    kid: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.constant(0), tie('tree')),
  })).tree;

  it('gives $1..$N in text order, each with its value, for any nesting', () => {
    fc.assert(
      fc.property(tree, (t) => {
        let leaf = 0;
        const expected: string[] = [];
        const build = (node: Tree): unknown[] =>
          node.kids.map((k) => {
            if (typeof k === 'number') {
              const v = `v${leaf++}`;
              expected.push(v);
              return v;
            }
            return b.fragment(templateOf(k.texts), build(k));
          });
        const values = build(t);
        const s = b.compose(templateOf(t.texts), values) ?? { text: piecesText({ parts: t.texts, values }), values };
        const numbers = [...s.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
        expect(numbers).toEqual(expected.map((_, i) => i + 1));
        expect(s.values).toEqual(expected);
        // what is left between the placeholders is the trees' text, in order
        const flat = (node: Tree): string => node.texts[0] + node.kids.map((k, i) => (typeof k === 'number' ? '$' : flat(k)) + node.texts[i + 1]).join('');
        expect(s.text.replace(/\$\d+/g, '$')).toBe(flat(t));
      }),
      runs(300),
    );
  });
});
