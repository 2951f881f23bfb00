/**
 * Building SQL text from pieces, for ctx.sql: quoted identifiers (`sql('name')`,
 * `sql(['schema', 'table'])`), the column list and VALUES of a bulk insert (`sql(rows, ...columns)`)
 * and fragments (`sql.fragment\`...\``) that compose into a statement, their `$n` renumbered.
 * Nothing here talks to the server: bad input is refused before anything is sent.
 *
 * A fragment is an empty object whose text and values live in its builder's WeakMap, so the only
 * fragments a statement accepts are the ones its own worker's `sql` made: an object forged with
 * the prototype, or a fragment of another builder, is refused. Fragments are flattened when made
 * (a fragment holds text parts and plain values only), so nesting costs nothing at execution.
 *
 * Limits: identifiers are quoted as quote_ident() does, always; PostgreSQL truncates one longer
 * than NAMEDATALEN-1 (63) bytes, as it does for any identifier. At most 65535 parameters per
 * statement: the wire protocol's limit (a 16-bit count), kept so a statement built here also runs
 * from a client. Flattening copies: a fragment grown by nesting it in a new one per loop step is
 * quadratic in its pieces, fine for a few clauses; many values go in sql(rows) or = ANY(array).
 */
import type { SqlFragment } from '../types';

/** The most parameters one statement may take (the wire protocol's 16-bit count). */
export const MAX_PARAMS = 65535;

/** What a fragment holds: `parts.length === values.length + 1`; value i goes between parts i and i+1. */
export interface Pieces {
  readonly parts: readonly string[];
  readonly values: readonly unknown[];
}

/** A statement made from a template with fragments: its text (`$1`...) and its parameters. */
export interface Composed {
  readonly text: string;
  readonly values: unknown[];
}

/**
 * The prototype of every fragment: instanceof tells a candidate apart from a parameter value in
 * one check; the builder's WeakMap then tells a real one from a forged or foreign one.
 */
class Fragment {
  /** A fragment is SQL text, never a value: refuse it where a value would be JSON-encoded. */
  toJSON(): never {
    throw new TypeError('an SQL fragment cannot be sent as a value: interpolate it directly in a ctx.sql`...` template (not inside an array or object)');
  }

  toString(): string {
    return '[SQL fragment]';
  }
}

// ctx.sql('SELECT 1') is an identifier, not a query (postgres.js's rule): reading it as a result
// says so instead of giving undefined. Not `then`: an async function may return a fragment.
for (const key of ['length', 'count', 'command', 'columns', '0', 'map', 'forEach', Symbol.iterator]) {
  Object.defineProperty(Fragment.prototype, key, {
    get(): never {
      throw new TypeError(
        'this is an SQL fragment, not a result: sql(...) called as a function quotes an identifier or builds rows. Run a statement with sql`...` as a tagged template, or raw text with sql.unsafe(text)',
      );
    },
  });
}

/** Whether a value is a TemplateStringsArray (a tagged template's first argument). */
export function isTemplateStrings(v: unknown): v is TemplateStringsArray {
  return Array.isArray(v) && (v as unknown as { raw?: unknown }).raw !== undefined;
}

// a lone surrogate becomes U+FFFD on the way to the server: the name would not be the one given
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** One identifier, double-quoted with embedded quotes doubled (quote_ident(), always quoting). */
export function quoteIdentifier(name: unknown, what = 'sql(identifier)'): string {
  if (typeof name !== 'string')
    throw new TypeError(`${what}: an identifier must be a string, got ${name === null ? 'null' : typeof name}`);
  if (name.length === 0) throw new TypeError(`${what}: an identifier cannot be empty (PostgreSQL has no zero-length names)`);
  if (name.includes('\0')) throw new TypeError(`${what}: an identifier cannot contain U+0000 (PostgreSQL names cannot hold it); remove it`);
  if (LONE_SURROGATE.test(name))
    throw new TypeError(`${what}: the identifier holds a lone UTF-16 surrogate, which PostgreSQL would receive as U+FFFD; pass well-formed text`);
  return '"' + name.replace(/"/g, '""') + '"';
}

/** `"schema"."table"` from ['schema', 'table']. */
export function quoteQualified(names: readonly unknown[]): string {
  if (names.length === 0) throw new TypeError("sql([...names]): give at least one name, e.g. sql(['schema', 'table'])");
  let text = quoteIdentifier(names[0], 'sql([...names])');
  for (let i = 1; i < names.length; i++) text += '.' + quoteIdentifier(names[i], 'sql([...names])');
  return text;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function isRow(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Fragment);
}

/** The column names of a bulk insert: those given, or the first row's keys (every row the same). */
function columnsOf(rows: readonly Record<string, unknown>[], given: readonly unknown[]): string[] {
  if (given.length > 0) {
    const columns = given.map((c) => {
      quoteIdentifier(c, 'sql(rows, ...columns)');
      return c as string;
    });
    if (new Set(columns).size !== columns.length) throw new TypeError(`sql(rows, ...columns): a column is named twice in ${columns.join(', ')}`);
    rows.forEach((row, i) => {
      for (const c of columns)
        if (!(c in row)) throw new TypeError(`sql(rows, ...columns): row ${i} has no key ${JSON.stringify(c)}; give it ${c}: null for NULL`);
    });
    return columns;
  }
  const columns = Object.keys(rows[0]);
  if (columns.length === 0)
    throw new TypeError('sql(rows): the first row has no keys, so there are no columns; give rows with keys or name the columns: sql(rows, ...columns)');
  for (let i = 1; i < rows.length; i++) {
    const keys = Object.keys(rows[i]);
    if (keys.length !== columns.length || !columns.every((c) => Object.prototype.hasOwnProperty.call(rows[i], c)))
      throw new TypeError(
        `sql(rows): row ${i} has keys (${keys.join(', ')}) but row 0 has (${columns.join(', ')}); ` +
          'give every row the same keys (null for NULL), or name the columns: sql(rows, ...columns)',
      );
  }
  return columns;
}

/** `("a","b") VALUES ($1,$2),($3,$4)` as pieces. */
function rowPieces(input: unknown, given: readonly unknown[]): Pieces {
  const rows = Array.isArray(input) ? input : [input];
  if (rows.length === 0) throw new TypeError('sql(rows): no rows to insert; skip the INSERT when there are none');
  rows.forEach((row, i) => {
    if (!isRow(row)) throw new TypeError(`sql(rows): row ${i} is ${describe(row)}; each row must be an object of column values`);
  });
  const columns = columnsOf(rows, given);
  const count = rows.length * columns.length;
  if (count > MAX_PARAMS)
    throw new RangeError(
      `sql(rows): ${rows.length} rows × ${columns.length} columns is ${count} parameters, over PostgreSQL's ${MAX_PARAMS}; insert in batches of at most ${Math.floor(MAX_PARAMS / columns.length)} rows`,
    );
  const parts: string[] = ['(' + columns.map((c) => quoteIdentifier(c)).join(',') + ') VALUES ('];
  const values: unknown[] = new Array(count);
  let k = 0;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as Record<string, unknown>;
    for (let c = 0; c < columns.length; c++) {
      const v = row[columns[c]];
      if (v instanceof Fragment)
        throw new TypeError(`sql(rows): row ${r}, column ${JSON.stringify(columns[c])} holds an SQL fragment; row values are sent as parameters, so give a value (use INSERT ... SELECT for computed ones)`);
      values[k++] = v;
      parts.push(c < columns.length - 1 ? ',' : r < rows.length - 1 ? '),(' : ')');
    }
  }
  return { parts, values };
}

/** The text of pieces, `$n` numbered from 1. */
export function piecesText(p: Pieces): string {
  let text = p.parts[0];
  for (let i = 1; i < p.parts.length; i++) text += '$' + i + p.parts[i];
  return text;
}

/** Makes and recognises the fragments of one worker's `sql`. */
export class FragmentBuilder {
  /** the pieces of every fragment this builder made; membership is the brand */
  private readonly made = new WeakMap<object, Pieces>();

  private wrap(p: Pieces): SqlFragment {
    const f = Object.freeze(new Fragment());
    this.made.set(f, p);
    return f as unknown as SqlFragment;
  }

  /** The pieces of a fragment this builder made. @throws TypeError for a forged or foreign one */
  private piecesOf(f: Fragment): Pieces {
    const p = this.made.get(f);
    if (p === undefined)
      throw new TypeError(
        "this SQL fragment was not made by this worker's sql (it comes from another worker's builder, or is a forged object); build it with this worker's ctx.sql",
      );
    return p;
  }

  /**
   * `sql(...)` called as a function: an identifier, a qualified name or the rows of a bulk
   * insert, as a fragment.
   */
  helper(first: unknown, rest: readonly unknown[]): SqlFragment {
    if (typeof first === 'string') {
      if (rest.length > 0) throw new TypeError("sql(identifier) takes one name; for schema.table use sql(['schema', 'table'])");
      return this.wrap({ parts: [quoteIdentifier(first)], values: [] });
    }
    if (Array.isArray(first) && first.length > 0 && typeof first[0] === 'string') {
      if (rest.length > 0) throw new TypeError("sql([...names]) quotes one qualified name and takes nothing more; for a bulk insert give rows (objects): sql(rows, 'a', 'b')");
      return this.wrap({ parts: [quoteQualified(first)], values: [] });
    }
    if (Array.isArray(first) && first.length > 0 && !isRow(first[0]))
      throw new TypeError(
        `sql(array): the array holds ${describe(first[0])}s; sql() takes names (strings) or rows (objects). For a list of values use = ANY(\${array}) in the template`,
      );
    if (Array.isArray(first) || isRow(first)) return this.wrap(rowPieces(first, rest));
    throw new TypeError(
      `sql(${describe(first)}): use sql\`...\` as a tagged template, sql('name') or sql(['schema', 'name']) for identifiers, sql(rows, ...columns) for a bulk insert`,
    );
  }

  /** `sql.fragment\`...\``: a piece of a statement, its values and fragments flattened in. */
  fragment(strings: TemplateStringsArray, values: readonly unknown[]): SqlFragment {
    if (!isTemplateStrings(strings)) throw new TypeError('sql.fragment must be used as a tagged template: sql.fragment`WHERE a = ${value}`');
    return this.wrap(this.flatten(strings, values));
  }

  /**
   * The statement of a template whose values hold fragments; null when none do (the caller then
   * uses the template as it is, cached by its strings).
   *
   * @throws TypeError for a fragment this builder did not make; RangeError past 65535 parameters
   */
  compose(strings: TemplateStringsArray, values: readonly unknown[]): Composed | null {
    let i = 0;
    while (i < values.length && !(values[i] instanceof Fragment)) i++;
    if (i === values.length) return null;
    if (!isTemplateStrings(strings)) throw new TypeError('sql must be used as a tagged template: sql`SELECT ${value}`; use sql.unsafe(text) for raw text');
    const p = this.flatten(strings, values);
    return { text: piecesText(p), values: p.values as unknown[] };
  }

  /** Template strings and values with every fragment spliced in: parts and plain values only. */
  private flatten(strings: readonly string[], values: readonly unknown[]): Pieces {
    const parts: string[] = [strings[0]];
    const out: unknown[] = [];
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v instanceof Fragment) {
        const p = this.piecesOf(v);
        parts[parts.length - 1] += p.parts[0];
        for (let j = 0; j < p.values.length; j++) {
          out.push(p.values[j]);
          parts.push(p.parts[j + 1]);
        }
        parts[parts.length - 1] += strings[i + 1];
      } else {
        out.push(v);
        parts.push(strings[i + 1]);
      }
    }
    if (out.length > MAX_PARAMS)
      throw new RangeError(`this statement has ${out.length} parameters, over PostgreSQL's ${MAX_PARAMS}; split it (e.g. insert in batches), or pass a list as one array: = ANY(\${array})`);
    return { parts, values: out };
  }

  /** The pieces of a fragment (tests and diagnostics). */
  inspect(f: SqlFragment): Pieces {
    return this.piecesOf(f as unknown as Fragment);
  }
}
