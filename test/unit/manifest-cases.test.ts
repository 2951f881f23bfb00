/**
 * manifest-cases.json against src/define.ts (no server): each definition is accepted or refused
 * with the message the table gives. test/manifest-cases.test.ts runs the same table against the
 * server's manifest reader.
 */
import { describe, expect, it } from 'vitest';
import { defineWorker, definitionMetadata } from '../../src/define';
import { manifestOf } from '../../src/cli/manifest';
import { definitionOf, loadManifestCases, renderManifest } from './manifest-cases';

const cases = loadManifestCases();

describe('manifest edge cases against define.ts', () => {
  it('the table is well formed', () => {
    expect(cases.length).toBeGreaterThan(50);
    for (const c of cases) {
      if (!c.accept) expect(c.define, c.case).toBeTypeOf('string');
      const serverRefuses = !(c.serverAccepts ?? c.accept);
      if (serverRefuses && !c.serverSkip) expect(c.server, c.case).toBeTypeOf('string');
      if (c.serverAccepts !== undefined) expect(c.differs, c.case).toBeTypeOf('string');
    }
  });

  it.each(cases.map((c) => [c.case, c] as const))('%s', (_, c) => {
    const def = definitionOf(c);
    if (c.accept) {
      expect(() => definitionMetadata(def)).not.toThrow();
      expect(() => defineWorker(def as never)).not.toThrow();
    } else {
      expect(() => definitionMetadata(def)).toThrow(TypeError);
      expect(() => definitionMetadata(def)).toThrow(c.define!);
      expect(() => defineWorker(def as never)).toThrow(c.define!);
    }
  });

  it('an accepted definition renders to the manifest deploy writes', () => {
    for (const c of cases.filter((x) => x.accept)) {
      const meta = definitionMetadata(definitionOf(c));
      const rendered = JSON.parse(renderManifest(c));
      const written = JSON.parse(JSON.stringify(manifestOf(meta, { bundle: `${meta.name}.js`, sha256: '0'.repeat(64), deployedAt: new Date(0), nodeTarget: 'node18' })));
      expect(rendered, c.case).toEqual(written);
    }
  });
});
