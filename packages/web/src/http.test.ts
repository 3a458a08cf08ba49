import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { egressRequest } from './http.js';
import { EgressPolicy } from './policy.js';
import { startServer, type TestServer } from '@research/testing/servers';

let a: TestServer;
let b: TestServer;
beforeAll(async () => {
  b = await startServer((req, res) => {
    res.end(JSON.stringify({ method: req.method, authorization: req.headers.authorization ?? null }));
  });
  a = await startServer((req, res) => {
    if (req.url === '/elsewhere') res.writeHead(307, { location: `${b.origin}/echo` }).end();
    else if (req.url === '/same') res.writeHead(307, { location: '/echo' }).end();
    else if (req.url === '/see-other') res.writeHead(303, { location: `${b.origin}/echo` }).end();
    else res.end(JSON.stringify({ method: req.method, authorization: req.headers.authorization ?? null }));
  });
});
afterAll(async () => {
  await a.close();
  await b.close();
});

const policy = (): EgressPolicy => new EgressPolicy({ allow: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`] });
const auth = { authorization: 'Bearer secret-key' };

describe('egressRequest redirects', () => {
  it('keeps credentials within the origin and drops them when a redirect leaves it', async () => {
    const same = await egressRequest(policy(), `${a.origin}/same`, { headers: auth });
    expect(JSON.parse(same.body.toString())).toEqual({ method: 'GET', authorization: 'Bearer secret-key' });
    const away = await egressRequest(policy(), `${a.origin}/elsewhere`, { headers: auth });
    expect(away.url).toBe(`${b.origin}/echo`);
    expect(JSON.parse(away.body.toString())).toEqual({ method: 'GET', authorization: null });
  });

  it('turns a POST into a GET on 303 and keeps the method on 307', async () => {
    const seeOther = await egressRequest(policy(), `${a.origin}/see-other`, { method: 'POST', body: '{}' });
    expect(JSON.parse(seeOther.body.toString()).method).toBe('GET');
    const temporary = await egressRequest(policy(), `${a.origin}/same`, { method: 'POST', body: '{}' });
    expect(JSON.parse(temporary.body.toString()).method).toBe('POST');
    expect(a.requests.at(-1)?.body).toBe('{}');
  });

  it('returns a 3xx as it is when redirects are off', async () => {
    const res = await egressRequest(policy(), `${a.origin}/elsewhere`, { maxRedirects: 0 });
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe(`${b.origin}/echo`);
  });
});
