/** Settings of the bench scripts read from the environment. */

/** A positive whole number from the environment variable `name`, or `dflt` when it is unset or empty. */
export function count(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not ${JSON.stringify(v)}`);
  return n;
}
