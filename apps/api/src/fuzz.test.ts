import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiErrorBody } from '@research/contracts';
import { raw, type RawResponse } from '@research/testing';
import { KEY, useApi } from '../test/api.js';

// Wrong keys are part of the input: the failed-login gate would otherwise answer 429 to most of
// the run and keep the bodies from reaching validation (limits.test.ts covers it).
const api = useApi({ env: { AUTH_FAILURE_LIMIT_PER_MIN: '1000000' } });
const seen = { requests: 0, byStatus: new Map<number, number>() };

afterAll(() => {
  // Shown in the test output so the closing note can give counts.
  console.log(
    `fuzz: ${seen.requests} requests, statuses ${JSON.stringify(Object.fromEntries([...seen.byStatus].sort()))}`,
  );
});

/** Header values a client can actually send (printable ASCII). */
const headerText = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 200,
});
const hostileKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'prompt',
  'metadata',
  '',
  'a'.repeat(65),
  '\u0000',
  'toString',
  'hasOwnProperty',
);

const metadata = fc.oneof(
  fc.dictionary(
    fc.oneof(hostileKey, fc.string({ maxLength: 70 })),
    fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.boolean(), fc.constant(null), fc.anything({ maxDepth: 2 })),
    { maxKeys: 40 },
  ),
  fc.anything({ maxDepth: 2 }),
);

const taskLike = fc.record(
  {
    prompt: fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ maxLength: 20 }).map((s) => `${s}\u0000${s}`),
      fc.integer(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.constant('   '),
    ),
    maxSteps: fc.oneof(
      fc.integer({ min: -10, max: 1_000 }),
      fc.double(),
      fc.string({ maxLength: 5 }),
      fc.constant(null),
    ),
    timeoutSeconds: fc.oneof(fc.integer({ min: -10, max: 100_000 }), fc.double(), fc.boolean()),
    model: fc.oneof(fc.string({ maxLength: 210 }), fc.integer()),
    metadata,
  },
  { requiredKeys: [] },
);

/** Bodies: task-shaped objects, extra keys, arbitrary JSON, deep nesting, raw bytes, oversized. */
const body = fc.oneof(
  { weight: 5, arbitrary: taskLike.map((o) => JSON.stringify(o)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(taskLike, hostileKey, fc.anything({ maxDepth: 2 }))
      .map(([o, k, v]) =>
        JSON.stringify(o).replace(
          /^\{/,
          `{${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}${Object.keys(o).length > 0 ? ',' : ''}`,
        ),
      ),
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 8_000 })
      .map((d) => `{"prompt":"p","metadata":{"a":${'['.repeat(d)}${']'.repeat(d)}}}`),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5_000 }).map((d) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 16 * 1024, max: 64 * 1024 }).map((n) => JSON.stringify({ prompt: 'x'.repeat(n) })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      'null',
      'true',
      '0',
      '[]',
      '{}',
      '{"prompt":"\\ud800"}',
      '{"prompt":"\\u0000"}',
      '\uFEFF{"prompt":"bom"}',
      '{"prompt":"p"}garbage',
    ),
  },
);

/** Mostly absent, sometimes one of the values. */
const rarely = <T>(arb: fc.Arbitrary<T>, absentWeight = 6) =>
  fc.oneof({ weight: absentWeight, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

/** Mostly well-formed requests, so most bodies reach validation; the rest attack the headers. */
const headers = fc
  .record({
    'content-type': fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'application/json; charset=utf-16',
          'application/json; charset=latin1',
          'application/json; charset=bogus',
          'application/vnd.api+json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data',
          '*/*',
          '',
        ),
      },
      { weight: 1, arbitrary: headerText },
    ),
    authorization: fc.oneof(
      { weight: 10, arbitrary: fc.constant(`Bearer ${KEY}`) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          `bearer ${KEY}`,
          `Bearer  ${KEY}`,
          `Bearer ${KEY} extra`,
          'Bearer',
          `Basic ${KEY}`,
          '',
          'Bearer \u00e9',
        ),
      },
      { weight: 1, arbitrary: headerText },
    ),
    'idempotency-key': rarely(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/), headerText), 2),
    'content-encoding': rarely(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'compress', 'bogus')),
    'last-event-id': rarely(headerText),
    accept: rarely(headerText),
  })
  .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>);

function check(res: RawResponse): void {
  seen.requests += 1;
  seen.byStatus.set(res.status, (seen.byStatus.get(res.status) ?? 0) + 1);
  expect(res.status, res.body.slice(0, 300)).toBeLessThan(500);
  if (res.status >= 400) {
    const parsed = ApiErrorBody.safeParse(JSON.parse(res.body));
    expect(parsed.success, res.body.slice(0, 300)).toBe(true);
    expect(res.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
  }
}

describe('fuzz', () => {
  it('POST /v1/jobs: 2000 generated bodies and headers never get a 5xx, and every error has the error shape', async () => {
    await fc.assert(
      fc.asyncProperty(body, headers, fc.boolean(), async (b, h, gzip) => {
        const bytes = typeof b === 'string' ? Buffer.from(b) : b;
        const sent: Record<string, string> = { ...h };
        let payload = bytes;
        // Honest gzip when the header says so half of the time; a lying header the other half.
        if (sent['content-encoding'] === 'gzip' && gzip) payload = gzipSync(bytes);
        const res = await raw(api.port, 'POST', '/v1/jobs', sent, payload);
        check(res);
      }),
      { numRuns: 2_000 },
    );
    // 2,000 submits take about 20 s alone and more beside other suites on a shared machine.
  }, 120_000);

  it('task routes: 1000 generated ids, paths and methods never get a 5xx', async () => {
    const segment = fc.oneof(
      fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)),
      fc.constantFrom(
        '..',
        '%2e%2e',
        '%252e%252e',
        '%00',
        '%',
        '%zz',
        '%c0%ae',
        '~',
        '.',
        'a%2fb',
        '%5c',
        '__proto__',
        'constructor',
      ),
      fc.stringMatching(/^[A-Za-z0-9_-]{1,130}$/),
    );
    const route = fc.tuple(
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      segment,
      fc.constantFrom('', '/events', '/cancel', '/files', '/files/'),
      fc.array(segment, { maxLength: 4 }),
      fc.oneof(fc.constant(`Bearer ${KEY}`), headerText),
    );
    await fc.assert(
      fc.asyncProperty(route, async ([method, id, sub, rest, authorization]) => {
        const tail = sub === '/files/' ? rest.join('/') : '';
        const path = `/v1/jobs/${id}${sub}${tail}`;
        // An existing task's stream would stay open; ids here are random so none exist, but cap anyway.
        const res = await raw(api.port, method, path, { authorization, 'last-event-id': '0-0' });
        check(res);
      }),
      { numRuns: 1_000 },
    );
  });
});
