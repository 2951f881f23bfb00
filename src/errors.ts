/**
 * Errors raised by PostgreSQL inside a worker.
 *
 * The field names follow node-postgres's `DatabaseError`, so code written
 * against `pg` reads the same fields here.
 */

/** Fields PostgreSQL may attach to an error (all optional but `code`). */
export interface PgErrorFields {
  /** SQLSTATE, e.g. `23505` for a unique violation. */
  code: string;
  severity?: string;
  detail?: string;
  hint?: string;
  /** 1-based character position of the error in the query text, as a string (as in node-postgres). */
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  /** The error context (PostgreSQL's CONTEXT line). */
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: string;
  routine?: string;
}

/**
 * An error reported by PostgreSQL: thrown by `ctx.sql`, `ctx.transaction` and
 * the other calls that reach the server. Catching it is safe: the statement
 * (or the transaction level it ran in) has already been rolled back and the
 * worker can go on.
 */
// the fields are declared once, in PgErrorFields (declaration merging)
// eslint-disable-next-line @typescript-eslint/no-empty-interface, @typescript-eslint/no-unsafe-declaration-merging
export interface PgError extends PgErrorFields {}

export class PgError extends Error {
  constructor(message: string, fields: PgErrorFields) {
    super(message);
    this.name = 'PgError';
    this.code = fields.code;
    for (const key of Object.keys(fields) as (keyof PgErrorFields)[]) {
      if (fields[key] !== undefined) (this as PgErrorFields)[key] = fields[key] as string;
    }
  }
}
