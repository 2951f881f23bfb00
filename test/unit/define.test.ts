/**
 * The rules of a worker definition in src/define.ts that the manifest table
 * (manifest-cases.json) does not cover: names, defaults, the brand, what is reported first.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DATABASE, DEFAULT_RESTART, DEFAULT_START, DEFINITION_BRAND, defineWorker, definitionMetadata, WORKER_NAME_RE, workerNameProblem,
} from '../../src/define';

const main = () => undefined;

describe('worker names', () => {
  it.each(['a', 'A', '_', 'a1', 'a-b', 'a_b', '_-', 'x'.repeat(63)])('%j is a name', (name) => {
    expect(workerNameProblem(name)).toBeNull();
    expect(WORKER_NAME_RE.test(name)).toBe(true);
  });

  it.each(['', '1a', '-a', 'a.b', 'a b', 'a/b', 'a\\b', 'a\u0000', 'é', 'a\n', 'x'.repeat(64), '..'])('%j is not', (name) => {
    expect(workerNameProblem(name)).toMatch(/^invalid worker name .*: a name is 1 to 63 ASCII characters/);
  });

  it('a name must be a string', () => {
    for (const v of [undefined, null, 1, {}, ['a']]) expect(workerNameProblem(v)).toBe('the definition needs a name (a string)');
  });
});

describe('definitionMetadata', () => {
  it('fills in the defaults: postgres, restart after 10 s, start when recovery finished, autostart, the rest null', () => {
    const m = definitionMetadata({ name: 'w', main });
    expect([m.name, m.database, m.restart, m.start, m.autostart, m.instances]).toEqual(['w', DEFAULT_DATABASE, DEFAULT_RESTART, DEFAULT_START, true, 1]);
    expect([DEFAULT_DATABASE, DEFAULT_RESTART, DEFAULT_START]).toEqual(['postgres', 10, 'recovery-finished']);
    const rest = Object.entries(m).filter(([k]) => !['name', 'database', 'restart', 'start', 'autostart', 'instances'].includes(k));
    expect(rest.map(([k]) => k).sort()).toEqual(['bufferLimitMb', 'callers', 'heapLimitMb', 'role', 'searchPath', 'youngGenerationMb']);
    for (const [k, v] of rest) expect(v, k).toBeNull();
  });

  it('keeps the lists as given; an empty list is none', () => {
    const m = definitionMetadata({ name: 'w', main, callers: ['b', 'a'], searchPath: ['s'] });
    expect([m.callers, m.searchPath]).toEqual([['b', 'a'], ['s']]);
    const empty = definitionMetadata({ name: 'w', main, callers: [], searchPath: [] });
    expect([empty.callers, empty.searchPath]).toEqual([null, null]);
  });

  it('refuses what is not an object, and a definition without main', () => {
    for (const v of [null, undefined, 'w', 1]) expect(() => definitionMetadata(v)).toThrow('a worker definition must be an object');
    expect(() => definitionMetadata({ name: 'w' })).toThrow('worker "w": main must be a function');
    expect(() => definitionMetadata({ name: 'w', main: 'x' })).toThrow('main must be a function');
  });

  it('reports the name first, then main, then the fields in order', () => {
    expect(() => definitionMetadata({ name: '1', restart: -1 })).toThrow(/invalid worker name/);
    expect(() => definitionMetadata({ name: 'w', restart: -1 })).toThrow(/main must be a function/);
    expect(() => definitionMetadata({ name: 'w', main, database: '', restart: -1 })).toThrow(/database/);
  });

  it('says what it got', () => {
    expect(() => definitionMetadata({ name: 'w', main, restart: 'soon' })).toThrow(`(got "soon")`);
    expect(() => definitionMetadata({ name: 'w', main, start: 3 })).toThrow('(got 3)');
    expect(() => definitionMetadata({ name: 'w', main, heapLimitMb: {} })).toThrow('(got object)');
  });

  it('counts the bytes of names in UTF-8', () => {
    expect(definitionMetadata({ name: 'w', main, role: 'é'.repeat(31) + 'x' }).role).toHaveLength(32);
    expect(() => definitionMetadata({ name: 'w', main, role: 'é'.repeat(32) })).toThrow('longer than 63 bytes');
  });
});

describe('defineWorker', () => {
  it('returns the definition itself, branded (not enumerable)', () => {
    const def = { name: 'w', main };
    const out = defineWorker(def);
    expect(out).toBe(def);
    expect((out as unknown as Record<symbol, unknown>)[DEFINITION_BRAND]).toBe(true);
    expect(Object.keys(out)).toEqual(['name', 'main']);
    expect(DEFINITION_BRAND).toBe(Symbol.for('pg-node-worker.definition'));
  });

  it('throws a TypeError for an invalid definition', () => {
    expect(() => defineWorker({ name: 'bad name', main })).toThrow(TypeError);
  });
});
