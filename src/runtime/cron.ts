/**
 * When a schedule's slots fall: the two forms `ctx.schedule()` accepts, parsed and checked once.
 *
 * - A standard 5-field cron expression (minute hour day-of-month month day-of-week: lists,
 *   ranges, steps, names such as MON and JAN, the @daily-style nicknames), read in an IANA time
 *   zone (default UTC, as pg_cron's default). Parsing and next-occurrence are croner's, which
 *   reads time zones through Intl; day-of-month and day-of-week combine with OR when both are
 *   restricted, as in Vixie cron and pg_cron. Around DST changes croner follows Vixie cron: a
 *   fixed time that falls in a gap runs at the first valid time after it, a fixed time that
 *   occurs twice runs once, and a repeating one (`*`, steps) runs on both occurrences.
 * - pg_cron's `N seconds` (1 to 59): slots are the instants whose Unix time is a multiple of N
 *   seconds, so every process of the worker (and a restarted one) computes the same slots.
 *
 * Limits: slots are whole seconds (croner's resolution); 6- and 7-field expressions are refused.
 */
import { Cron } from 'croner';

/** The fields of a 5-field expression, in order, as errors name them. */
export const CRON_FIELDS = ['minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;

/** Which part of a schedule's input was wrong: a cron field, the `N seconds` count or the time zone. */
export type ScheduleField = (typeof CRON_FIELDS)[number] | 'seconds' | 'expression' | 'timezone';

/** A schedule's input that cannot be used; `field` names the part at fault. */
export class ScheduleInputError extends RangeError {
  constructor(readonly field: ScheduleField, message: string) {
    super(message);
    this.name = 'ScheduleInputError';
  }
}

/** A parsed schedule: computes slots, whole-second instants. */
export interface Slots {
  /** The expression as given. */
  readonly expression: string;
  /** The IANA time zone it is read in. */
  readonly timezone: string;
  /** The first slot strictly after `after`; null when there is none (an expression that never occurs again). */
  next(after: Date): Date | null;
  /** The last slot at or before `at`; null when there is none. */
  latest(at: Date): Date | null;
}

const SECONDS_FORM = /^\s*(\d+)\s+seconds?\s*$/i;

/** Checks an IANA time zone name through Intl (as croner will read it); returns it. */
export function checkTimezone(timezone: unknown): string {
  if (typeof timezone !== 'string' || timezone === '')
    throw new ScheduleInputError('timezone', `timezone must be an IANA time zone name such as "Europe/Berlin", not ${describe(timezone)}`);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone }).format(0);
  } catch {
    throw new ScheduleInputError('timezone', `timezone "${timezone}" is not an IANA time zone name this Node knows (such as "Europe/Berlin" or "UTC")`);
  }
  return timezone;
}

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' ? String(v) : `${typeof v} ${String(v)}`;
}

const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/**
 * Day-of-week names as numbers, before croner reads the field: croner reads the degenerate range
 * `SUN-SUN` as every day, where cron means Sundays. `SUN` is 0, or 7 as the end of a range that
 * starts on another day (`FRI-SUN` is 5-7). Other text is left for croner to check.
 */
export function dayNumbers(field: string): string {
  const day = (token: string, rangeEnd: boolean, start: string | null) => {
    const i = DAY_NAMES.indexOf(token.toUpperCase());
    if (i < 0) return token;
    return i === 0 && rangeEnd && start !== null && start !== '0' ? '7' : String(i);
  };
  return field
    .split(',')
    .map((item) => {
      const [span, ...step] = item.split('/');
      const ends = span.split('-');
      const first = day(ends[0], false, null);
      const rest = ends.slice(1).map((e) => day(e, true, first));
      return [[first, ...rest].join('-'), ...step].join('/');
    })
    .join(',');
}

/** A croner evaluator (no timer: croner only starts one when given a function). */
function cron(expression: string, timezone: string): Cron {
  return new Cron(expression, { mode: '5-part', timezone, paused: true });
}

/**
 * Which field of a 5-field expression croner refuses: each field alone, the others `*`. The
 * first that fails alone is named; when each is fine alone, the combination is at fault.
 */
function badField(parts: string[]): { field: ScheduleField; reason: string } | null {
  for (let i = 0; i < CRON_FIELDS.length; i++) {
    const probe = CRON_FIELDS.map((_, j) => (j === i ? (j === 4 ? dayNumbers(parts[j]) : parts[j]) : '*')).join(' ');
    try {
      cron(probe, 'UTC');
    } catch (err) {
      return { field: CRON_FIELDS[i], reason: (err as Error).message.replace(/^CronPattern:\s*/, '') };
    }
  }
  return null;
}

function parseCron(expression: string, timezone: string): Slots {
  const text = expression.trim();
  const parts = text.split(/\s+/);
  if (!text.startsWith('@') && parts.length !== 5)
    throw new ScheduleInputError(
      'expression',
      `cron expression "${expression}" has ${parts.length} field${parts.length === 1 ? '' : 's'}: it needs 5 (minute hour day-of-month month day-of-week) or the form "N seconds"`,
    );
  let evaluator: Cron;
  try {
    evaluator = cron(text.startsWith('@') ? text : [...parts.slice(0, 4), dayNumbers(parts[4])].join(' '), timezone);
  } catch (err) {
    const bad = text.startsWith('@') ? null : badField(parts);
    if (bad) throw new ScheduleInputError(bad.field, `cron expression "${expression}": invalid ${bad.field} field "${parts[CRON_FIELDS.indexOf(bad.field as (typeof CRON_FIELDS)[number])]}" (${bad.reason})`);
    throw new ScheduleInputError('expression', `cron expression "${expression}" is invalid: ${(err as Error).message.replace(/^CronPattern:\s*/, '')}`);
  }
  if (evaluator.nextRun(new Date()) === null)
    throw new ScheduleInputError('day-of-month', `cron expression "${expression}" never occurs (no such day in any month it names)`);
  return Object.freeze({
    expression,
    timezone,
    next: (after: Date) => evaluator.nextRun(after),
    latest: (at: Date) => evaluator.previousRuns(1, new Date(at.getTime() + 1))[0] ?? null,
  });
}

function parseSeconds(expression: string, count: string, timezone: string): Slots {
  const n = Number(count);
  if (!Number.isInteger(n) || n < 1 || n > 59)
    throw new ScheduleInputError('seconds', `"${expression}": the number of seconds must be from 1 to 59 (as pg_cron's "N seconds"), not ${count}`);
  const step = n * 1000;
  return Object.freeze({
    expression,
    timezone,
    next: (after: Date) => new Date((Math.floor(after.getTime() / step) + 1) * step),
    latest: (at: Date) => new Date(Math.floor(at.getTime() / step) * step),
  });
}

/**
 * Parses a schedule: a 5-field cron expression read in `timezone` (default `'UTC'`), or `N
 * seconds` (1–59). Throws a {@link ScheduleInputError} naming the field at fault.
 */
export function parseSchedule(expression: unknown, timezone: unknown = 'UTC'): Slots {
  const zone = checkTimezone(timezone);
  if (typeof expression !== 'string' || expression.trim() === '')
    throw new ScheduleInputError('expression', `the cron expression must be a non-empty string such as "0 3 * * *" or "10 seconds", not ${describe(expression)}`);
  const seconds = SECONDS_FORM.exec(expression);
  return seconds ? parseSeconds(expression, seconds[1], zone) : parseCron(expression, zone);
}
