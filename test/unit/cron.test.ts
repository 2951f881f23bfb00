/**
 * The slot arithmetic of ctx.schedule (src/runtime/cron.ts), without a server: properties of
 * next/latest for generated 5-field expressions against an oracle written here (the generator
 * knows the set of values each field allows), `N seconds`, DST transitions in a time zone, and
 * the errors naming the field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSchedule, ScheduleInputError } from '../../src/runtime/cron';
import { runs } from '../helpers/fc';

/** A field's text and the values it allows. */
interface Field {
  text: string;
  values: Set<number>;
  star: boolean;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const range = (a: number, b: number, step = 1) => {
  const out: number[] = [];
  for (let v = a; v <= b; v += step) out.push(v);
  return out;
};

/** One element of a list: a value, a range, a stepped range, optionally written as names. */
function element(min: number, max: number, names?: string[]): fc.Arbitrary<{ text: string; values: number[] }> {
  const name = (v: number, useName: boolean) => (names && useName ? names[v - min] : String(v));
  const value = fc.record({ v: fc.integer({ min, max }), n: fc.boolean() }).map(({ v, n }) => ({ text: name(v, n), values: [v] }));
  const span = fc
    .record({ a: fc.integer({ min, max }), b: fc.integer({ min, max }), n: fc.boolean() })
    .map(({ a, b, n }) => (a <= b ? { a, b, n } : { a: b, b: a, n }))
    .map(({ a, b, n }) => ({ text: `${name(a, n)}-${name(b, n)}`, values: range(a, b) }));
  const stepped = fc
    .record({ a: fc.integer({ min, max }), b: fc.integer({ min, max }), k: fc.integer({ min: 1, max: Math.max(1, max - min) }) })
    .map(({ a, b, k }) => (a <= b ? { a, b, k } : { a: b, b: a, k }))
    .map(({ a, b, k }) => ({ text: `${a}-${b}/${k}`, values: range(a, b, k) }));
  return fc.oneof(value, span, stepped);
}

/** A field: `*`, `* /k` (only where `starStep`), or a list of elements. */
function field(min: number, max: number, opts: { names?: string[]; starStep?: boolean } = {}): fc.Arbitrary<Field> {
  const star = fc.constant({ text: '*', values: new Set(range(min, max)), star: true });
  const list = fc.array(element(min, max, opts.names), { minLength: 1, maxLength: 3 }).map((els) => ({
    text: els.map((e) => e.text).join(','),
    values: new Set(els.flatMap((e) => e.values)),
    star: false,
  }));
  const arbs: fc.Arbitrary<Field>[] = [star, list];
  if (opts.starStep !== false)
    arbs.push(fc.integer({ min: 1, max: max - min }).map((k) => ({ text: `*/${k}`, values: new Set(range(min, max, k)), star: false })));
  return fc.oneof(...arbs);
}

interface Expr {
  text: string;
  minute: Field;
  hour: Field;
  dom: Field;
  month: Field;
  dow: Field;
}

// day-of-month and day-of-week are `*` or explicit (no `*/k`), so that the OR rule between them is unambiguous
const expr: fc.Arbitrary<Expr> = fc
  .record({
    minute: field(0, 59),
    hour: field(0, 23),
    dom: field(1, 28, { starStep: false }),
    month: field(1, 12, { names: MONTHS }),
    dow: field(0, 6, { names: DAYS, starStep: false }),
  })
  .map((f) => ({ ...f, text: [f.minute, f.hour, f.dom, f.month, f.dow].map((x) => x.text).join(' ') }));

interface Local {
  minute: number;
  hour: number;
  dom: number;
  month: number;
  dow: number;
  second: number;
}

/** Local fields in a zone with a fixed offset (minutes east of UTC), by arithmetic alone. */
function fixedLocal(t: number, offset: number): Local {
  const d = new Date(t + offset * 60000);
  return { minute: d.getUTCMinutes(), hour: d.getUTCHours(), dom: d.getUTCDate(), month: d.getUTCMonth() + 1, dow: d.getUTCDay(), second: d.getUTCSeconds() };
}

/** Local fields in an IANA zone, through Intl. */
function zoneLocal(t: number, zone: string): Local {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short',
  }).formatToParts(t);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return { minute: +get('minute'), hour: +get('hour'), dom: +get('day'), month: +get('month'), dow: DAYS.indexOf(get('weekday').toUpperCase()), second: +get('second') };
}

/** The cron rule: day-of-month and day-of-week combine with OR when both are restricted. */
function matches(e: Expr, l: Local): boolean {
  const has = (f: Field, v: number) => f.star || f.values.has(v);
  if (l.second !== 0 || !has(e.minute, l.minute) || !has(e.hour, l.hour) || !has(e.month, l.month)) return false;
  const dom = has(e.dom, l.dom);
  const dow = has(e.dow, l.dow);
  if (e.dom.star || e.dow.star) return dom && dow;
  return dom || dow;
}

// 2000-01-01 to 2037-12-31
const instant = fc.integer({ min: 946684800000, max: 2145830400000 });
const FIXED_ZONES: [string, number][] = [['UTC', 0], ['Asia/Kolkata', 330], ['Asia/Kathmandu', 345]];

describe('5-field expressions', () => {
  it('next is after now, matches every field, and no matching minute lies between (fixed-offset zones)', () => {
    fc.assert(
      fc.property(expr, instant, fc.constantFrom(...FIXED_ZONES), (e, now, [zone, offset]) => {
        const slots = parseSchedule(e.text, zone);
        const next = slots.next(new Date(now));
        expect(next).not.toBeNull();
        const t = next!.getTime();
        expect(t).toBeGreaterThan(now);
        expect(matches(e, fixedLocal(t, offset))).toBe(true);
        // nothing earlier: scanned minute by minute over the first two days
        const firstMinute = Math.floor(now / 60000) * 60000 + 60000;
        for (let m = firstMinute; m < Math.min(t, now + 2 * 86400000); m += 60000) expect(matches(e, fixedLocal(m, offset)), new Date(m).toISOString()).toBe(false);
        // latest(now) is the slot before: at or before now, and next(latest) is after now
        const latest = slots.latest(new Date(now));
        if (latest !== null) {
          expect(latest.getTime()).toBeLessThanOrEqual(now);
          expect(matches(e, fixedLocal(latest.getTime(), offset))).toBe(true);
          expect(slots.next(latest)!.getTime()).toBe(t);
        }
      }),
      runs(150, 20000),
    );
  });

  it('next is after now and matches the fields in a DST zone, or is the first minute after a DST gap', () => {
    const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Sydney'];
    fc.assert(
      fc.property(expr, instant, fc.constantFrom(...zones), (e, now, zone) => {
        const next = parseSchedule(e.text, zone).next(new Date(now));
        expect(next).not.toBeNull();
        const t = next!.getTime();
        expect(t).toBeGreaterThan(now);
        if (!matches(e, zoneLocal(t, zone))) {
          // a time in a gap runs at the first valid time after it: the UTC offset changed just before
          const before = zoneLocal(t - 60000, zone);
          const at = zoneLocal(t, zone);
          const step = ((at.hour * 60 + at.minute) - (before.hour * 60 + before.minute) + 1440) % 1440;
          expect(step, `${e.text} in ${zone} after ${new Date(now).toISOString()}: ${next!.toISOString()}`).toBeGreaterThan(1);
        }
      }),
      runs(150, 20000),
    );
  });

  it('runs a daily fixed time once per day across both DST changes, in the gap at the first valid time', () => {
    const slots = parseSchedule('30 2 * * *', 'Europe/Berlin');
    let t = new Date('2026-03-27T12:00:00Z');
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((t = slots.next(t)!).toISOString());
    // 2026-03-29 02:30 does not exist in Berlin: 03:00 CEST
    expect(seen).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z']);
    t = new Date('2026-10-24T12:00:00Z');
    const autumn: string[] = [];
    for (let i = 0; i < 3; i++) autumn.push((t = slots.next(t)!).toISOString());
    // 2026-10-25 02:30 occurs twice: once, the first time
    expect(autumn).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
  });

  it('runs a repeating schedule on both occurrences of a repeated hour, and strictly increasing', () => {
    const slots = parseSchedule('*/30 * * * *', 'Europe/Berlin');
    let t = new Date('2026-10-24T23:10:00Z');
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) seen.push((t = slots.next(t)!).getTime());
    // every 30 minutes of real time, through 02:00-02:59 CEST and again CET
    for (let i = 1; i < seen.length; i++) expect(seen[i] - seen[i - 1]).toBe(30 * 60000);
  });

  it('reads names, lists, ranges and steps as cron does', () => {
    const next = (text: string, from: string, zone = 'UTC') => parseSchedule(text, zone).next(new Date(from))!.toISOString();
    expect(next('0 0 * JAN MON', '2026-01-01T00:00:00Z')).toBe('2026-01-05T00:00:00.000Z');
    expect(next('0 0 13 * FRI', '2026-02-01T00:00:00Z')).toBe('2026-02-06T00:00:00.000Z'); // OR: the 6th is a Friday
    expect(next('15,45 9-17/4 * * *', '2026-01-01T10:00:00Z')).toBe('2026-01-01T13:15:00.000Z');
    expect(next('0 0 * * 7', '2026-01-01T00:00:00Z')).toBe('2026-01-04T00:00:00.000Z'); // 7 is Sunday too
    expect(next('0 3 * * *', '2026-01-01T00:00:00Z', 'Europe/Berlin')).toBe('2026-01-01T02:00:00.000Z');
    expect(next('@daily', '2026-01-01T00:00:00Z')).toBe('2026-01-02T00:00:00.000Z');
    // day names: SUN-SUN is Sundays only, FRI-SUN ends on Sunday
    expect(next('0 0 * * SUN-SUN', '2000-01-01T00:00:00Z')).toBe('2000-01-02T00:00:00.000Z');
    expect(next('0 0 * * FRI-SUN', '2000-01-03T00:00:00Z')).toBe('2000-01-07T00:00:00.000Z');
    expect(next('0 0 * * sat-sun/1', '2000-01-02T00:00:00Z')).toBe('2000-01-08T00:00:00.000Z');
  });
});

describe("'N seconds'", () => {
  it('slots are the multiples of N seconds: next is within N s after now, latest within N s before', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 59 }), instant, fc.constantFrom('seconds', 'second', 'Seconds'), (n, now, word) => {
        const slots = parseSchedule(`${n} ${word}`);
        const next = slots.next(new Date(now))!.getTime();
        const latest = slots.latest(new Date(now))!.getTime();
        expect(next % (n * 1000)).toBe(0);
        expect(latest % (n * 1000)).toBe(0);
        expect(next).toBeGreaterThan(now);
        expect(next - now).toBeLessThanOrEqual(n * 1000);
        expect(latest).toBeLessThanOrEqual(now);
        expect(now - latest).toBeLessThan(n * 1000);
        expect(slots.next(new Date(latest))!.getTime()).toBe(next);
      }),
      runs(200),
    );
  });
});

describe('bad input', () => {
  const fieldOf = (text: unknown, zone?: unknown) => {
    try {
      parseSchedule(text, zone);
      return 'accepted';
    } catch (e) {
      expect(e).toBeInstanceOf(ScheduleInputError);
      expect(e).toBeInstanceOf(RangeError);
      return `${(e as ScheduleInputError).field}: ${(e as Error).message}`;
    }
  };

  it('names the field at fault', () => {
    expect(fieldOf('60 * * * *')).toMatch(/^minute: .*invalid minute field "60"/);
    expect(fieldOf('* 24 * * *')).toMatch(/^hour: .*invalid hour field "24"/);
    expect(fieldOf('* * 0 * *')).toMatch(/^day-of-month: /);
    expect(fieldOf('* * * 13 *')).toMatch(/^month: /);
    expect(fieldOf('* * * FOO *')).toMatch(/^month: /);
    expect(fieldOf('* * * * 8')).toMatch(/^day-of-week: /);
    expect(fieldOf('5-1-3 * * * *')).toMatch(/^minute: /);
    expect(fieldOf('* * * *')).toMatch(/^expression: .*has 4 fields: it needs 5/);
    expect(fieldOf('0 * * * * *')).toMatch(/^expression: .*has 6 fields/);
    expect(fieldOf('')).toMatch(/^expression: /);
    expect(fieldOf(42)).toMatch(/^expression: /);
    expect(fieldOf('0 seconds')).toMatch(/^seconds: .*from 1 to 59/);
    expect(fieldOf('60 seconds')).toMatch(/^seconds: /);
    expect(fieldOf('0 0 30 2 *')).toMatch(/^day-of-month: .*never occurs/);
    expect(fieldOf('0 3 * * *', 'Mars/Olympus')).toMatch(/^timezone: .*"Mars\/Olympus"/);
    expect(fieldOf('0 3 * * *', '')).toMatch(/^timezone: /);
    expect(fieldOf('0 3 * * *', 'Europe/Berlin')).toBe('accepted');
  });
});
