/**
 * The pure parts of src/runtime/jobs.ts: the retry backoff and how a thrown value is recorded.
 */
import { describe, expect, it } from 'vitest';
import { backoffDelay, errorText } from '../../src/runtime/jobs';

describe('backoffDelay', () => {
  it('starts at backoffMs, doubles per attempt made, stops at an hour', () => {
    expect([1, 2, 3, 4].map((a) => backoffDelay(1000, a))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffDelay(1000, 30)).toBe(3_600_000);
    expect(backoffDelay(0, 5)).toBe(0);
  });
});

describe('errorText', () => {
  it('records an Error as name and message, anything else as its string', () => {
    expect(errorText(new TypeError('bad'))).toBe('TypeError: bad');
    expect(errorText('plain')).toBe('plain');
    expect(errorText(42)).toBe('42');
    expect(errorText(null)).toBe('null');
    expect(errorText(Object.create(null))).toBe('[object Object]');
  });
});
