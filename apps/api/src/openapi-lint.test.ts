import spectralCore from '@stoplight/spectral-core';
import Parsers from '@stoplight/spectral-parsers';
import { oas } from '@stoplight/spectral-rulesets';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from './openapi.js';

const { Spectral, Document } = spectralCore;

describe('the OpenAPI document', () => {
  it('has no problem under Spectral spectral:oas', async () => {
    const spectral = new Spectral();
    spectral.setRuleset({ extends: [[oas as never, 'recommended']] });
    const results = await spectral.run(
      new Document(JSON.stringify(openApiDocument(), null, 2), Parsers.Json, 'openapi.json'),
    );
    // Every severity counts (errors, warnings, information, hints): 0 problems.
    expect(results.map((r) => `${r.code} at ${r.path.join('.')}: ${r.message}`)).toEqual([]);
  });

  it('gives every operation an operationId, tags and a description', () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, Record<string, unknown>>> };
    const ids = new Set<string>();
    for (const [route, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.operationId, `${method} ${route}`).toEqual(expect.any(String));
        expect(op.tags, `${method} ${route}`).toEqual([expect.any(String)]);
        expect(String(op.description).length, `${method} ${route}`).toBeGreaterThan(20);
        ids.add(op.operationId as string);
      }
    }
    expect(ids.size).toBe(Object.values(doc.paths).flatMap((ops) => Object.keys(ops)).length);
  });
});
