import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressDeniedError, type EgressRule, WebError } from './errors.js';
import { egressRequest } from './http.js';
import { type Destination, EgressPolicy, type Resolver } from './policy.js';
import { type CountingListener, countingListener, startServer, type TestServer } from '@research/testing/servers';

/**
 * The egress policy against real sockets on loopback. The counting listener stands where a
 * refused request would land; it must see no connection at all. Every request also goes past
 * `onConnect`, which refuses anything but loopback, so a broken policy could not send traffic
 * off this machine during the test either.
 */

// TEST DATA: names the test resolver answers; nothing is looked up on the network.
const NAMES: Record<string, string[]> = {
  'loopback.test': ['127.0.0.1'],
  'v6-loopback.test': ['::1'],
  'mapped.test': ['::ffff:127.0.0.1'],
  'mixed.test': ['93.184.215.14', '127.0.0.1'],
  'metadata.test': ['169.254.169.254'],
  'private.test': ['10.0.0.7'],
  'public.test': ['93.184.215.14'],
  'junk.test': ['not-an-address'],
};
let lookups: string[] = [];
const resolver: Resolver = async (name) => {
  lookups.push(name);
  const answer = NAMES[name];
  if (!answer) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

let listener: CountingListener;
let allowed: TestServer;
const connects: Destination[] = [];
const guard = (d: Destination): void => {
  connects.push(d);
  if (!['127.0.0.1', '::1'].includes(d.address)) throw new Error(`TEST GUARD: refusing to connect to ${d.address}`);
};

beforeAll(async () => {
  listener = await countingListener();
  allowed = await startServer((req, res) => {
    const p = listener.port;
    const a = allowed.port;
    const to: Record<string, string> = {
      '/to-counting': `http://127.0.0.1:${p}/`,
      '/to-redis': 'http://127.0.0.1:6379/',
      '/to-localhost': `http://localhost:${a}/ok`,
      '/to-v6': `http://[::1]:${p}/`,
      '/to-mapped-counting': `http://[::ffff:127.0.0.1]:${p}/`,
      '/to-decimal': `http://2130706433:${p}/`,
      '/to-file': 'file:///etc/passwd',
      '/to-gopher': `gopher://127.0.0.1:${p}/_INFO`,
      '/to-metadata': 'http://169.254.169.254/latest/meta-data/',
      '/to-named-loopback': `http://loopback.test:${p}/`,
      '/to-relative': '/ok',
    };
    const hop = /^\/hops\/(\d+)$/.exec(req.url ?? '');
    if (hop) {
      const n = Number(hop[1]);
      res.writeHead(302, { location: n === 0 ? '/ok' : `/hops/${n - 1}` }).end();
    } else if (req.url && to[req.url]) res.writeHead(302, { location: to[req.url] }).end();
    else if (req.url === '/headers') res.end(JSON.stringify(req.headers));
    else res.end('allowed');
  });
});
afterAll(async () => {
  await listener.close();
  await allowed.close();
});

function policy(options: { allow?: string[]; deny?: string[] } = {}): EgressPolicy {
  return new EgressPolicy({ allow: [`127.0.0.1:${allowed.port}`], ...options, resolver, onConnect: guard });
}

async function refusal(p: EgressPolicy, url: string): Promise<EgressDeniedError> {
  const err = await egressRequest(p, url).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof EgressDeniedError)) throw new Error(`${url} was not refused: ${String(err)}`);
  return err;
}

describe('the egress policy refuses hostile destinations without opening a connection', () => {
  const P = (): number => listener.port;
  const table: [string, () => string, EgressRule][] = [
    ['loopback', () => `http://127.0.0.1:${P()}/`, 'port'],
    ['loopback, shortened', () => `http://127.1:${P()}/`, 'port'],
    ['loopback, decimal', () => `http://2130706433:${P()}/`, 'port'],
    ['loopback, hex', () => `http://0x7f000001:${P()}/`, 'port'],
    ['loopback, dotted hex', () => `http://0x7f.0.0.1:${P()}/`, 'port'],
    ['loopback, octal', () => `http://0177.0.0.1:${P()}/`, 'port'],
    ['loopback, zero-padded', () => `http://127.000.000.001:${P()}/`, 'port'],
    ['loopback on port 80', () => 'http://127.0.0.1/', 'address'],
    ['loopback, decimal, port 80', () => 'http://2130706433/', 'address'],
    ['IPv6 loopback', () => `http://[::1]:${P()}/`, 'port'],
    ['IPv6 loopback, zero-padded', () => `http://[0000:0000:0000:0000:0000:0000:0000:0001]:${P()}/`, 'port'],
    ['IPv6 loopback, port 80', () => 'http://[0:0:0:0:0:0:0:1]/', 'address'],
    ['IPv4-mapped loopback', () => 'http://[::ffff:127.0.0.1]/', 'address'],
    ['IPv4-mapped loopback, hex', () => 'http://[::ffff:7f00:1]/', 'address'],
    ['IPv4-compatible loopback', () => 'http://[::127.0.0.1]/', 'address'],
    ['NAT64 loopback', () => 'http://[64:ff9b::127.0.0.1]/', 'address'],
    ['6to4 loopback', () => 'http://[2002:7f00:1::]/', 'address'],
    ['unspecified (reaches this machine on Linux)', () => 'http://0.0.0.0/', 'address'],
    ['unspecified, shortest', () => 'http://0/', 'address'],
    ['IPv6 unspecified', () => 'http://[::]/', 'address'],
    ['localhost', () => `http://localhost:${P()}/`, 'host-name'],
    ['localhost, upper case with a dot', () => 'http://LOCALHOST./', 'host-name'],
    ['a subdomain of localhost', () => 'http://api.localhost/', 'host-name'],
    ['a name resolving to loopback', () => 'http://loopback.test/', 'address'],
    ['a name resolving to IPv6 loopback', () => 'http://v6-loopback.test/', 'address'],
    ['a name resolving to a mapped loopback', () => 'http://mapped.test/', 'address'],
    ['a name resolving to public and loopback addresses', () => 'http://mixed.test/', 'address'],
    ['a name resolving to something that is no address', () => 'http://junk.test/', 'address'],
    ['cloud metadata', () => 'http://169.254.169.254/latest/meta-data/', 'address'],
    ['cloud metadata by name', () => 'http://metadata.test/', 'address'],
    ['cloud metadata, IPv4-mapped', () => 'http://[::ffff:a9fe:a9fe]/', 'address'],
    ['a file', () => 'file:///etc/passwd', 'scheme'],
    ['gopher to loopback', () => `gopher://127.0.0.1:${P()}/_SET%20x%201`, 'scheme'],
    ['ftp', () => `ftp://127.0.0.1:${P()}/`, 'scheme'],
    ['data', () => 'data:text/plain,hello', 'scheme'],
    ['javascript', () => 'javascript:alert(1)', 'scheme'],
    ['websocket', () => `ws://127.0.0.1:${P()}/`, 'scheme'],
    ['not a URL', () => '/etc/passwd', 'scheme'],
    ['credentials in the URL', () => 'http://user:secret@public.test/', 'credentials'],
    ['the local Redis port', () => 'http://127.0.0.1:6379/', 'port'],
    ['a public host on another port', () => `http://public.test:${P()}/`, 'port'],
    ['a redirect into loopback, on a port not allowed', () => `${allowed.origin}/to-counting`, 'port'],
    ['a redirect into the local Redis port', () => `${allowed.origin}/to-redis`, 'port'],
    ['a redirect to localhost, on the allowed port', () => `${allowed.origin}/to-localhost`, 'host-name'],
    ['a redirect into IPv6 loopback', () => `${allowed.origin}/to-v6`, 'port'],
    ['a redirect into mapped loopback', () => `${allowed.origin}/to-mapped-counting`, 'port'],
    ['a redirect into decimal loopback', () => `${allowed.origin}/to-decimal`, 'port'],
    ['a redirect to a file', () => `${allowed.origin}/to-file`, 'scheme'],
    ['a redirect to gopher', () => `${allowed.origin}/to-gopher`, 'scheme'],
    ['a redirect to cloud metadata', () => `${allowed.origin}/to-metadata`, 'address'],
    ['a redirect to a name resolving to loopback', () => `${allowed.origin}/to-named-loopback`, 'port'],
  ];

  it.each(table)('%s', async (_what, url, rule) => {
    const before = { connections: listener.connections(), connects: connects.length, served: allowed.requests.length };
    const err = await refusal(policy(), url());
    expect(err.code).toBe('egress_denied');
    expect(err.retryable).toBe(false);
    expect(err.rule).toBe(rule);
    expect(err.message).toMatch(/^egress denied \(/);
    expect(listener.connections()).toBe(before.connections);
    const redirected = url().startsWith(allowed.origin);
    // A redirect costs one connection: to the allowed server, never to where it points.
    expect(connects.length - before.connects).toBe(redirected ? 1 : 0);
    expect(connects.slice(before.connects).every((d) => d.port === allowed.port)).toBe(true);
    expect(allowed.requests.length - before.served).toBe(redirected ? 1 : 0);
  });

  it('saw no connection on the counting listener over the whole table', () => {
    expect(listener.connections()).toBe(0);
  });

  it('names the refused range, and refuses private, CGNAT, multicast, broadcast and documentation ranges', async () => {
    const p = policy();
    const ranges: [string, string][] = [
      ['http://10.0.0.1/', 'private'],
      ['http://172.16.5.4/', 'private'],
      ['http://192.168.1.1/', 'private'],
      ['http://private.test/', 'private'],
      ['http://100.64.0.1/', 'carrierGradeNat'],
      ['http://224.0.0.251/', 'multicast'],
      ['http://255.255.255.255/', 'broadcast'],
      ['http://192.0.2.10/', 'reserved'],
      ['http://198.51.100.10/', 'reserved'],
      ['http://203.0.113.10/', 'reserved'],
      ['http://240.0.0.1/', 'reserved'],
      ['http://[fe80::1]/', 'linkLocal'],
      ['http://[fd00::1]/', 'uniqueLocal'],
      ['http://[ff02::1]/', 'multicast'],
      ['http://[2001:db8::1]/', 'reserved'],
      ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', 'teredo'],
      ['http://[::ffff:10.0.0.1]/', 'ipv4Mapped(private)'],
    ];
    for (const [url, range] of ranges) {
      // vet only: it decides without connecting anywhere.
      const err = await p.vet(url).catch((e: unknown) => e);
      expect(err, url).toBeInstanceOf(EgressDeniedError);
      expect((err as EgressDeniedError).range, url).toBe(range);
    }
    expect(connects.filter((d) => !['127.0.0.1', '::1'].includes(d.address))).toEqual([]);
  });

  it('looks up no name whose port could never be allowed', async () => {
    lookups = [];
    await refusal(policy(), 'http://public.test:6379/');
    expect(lookups).toEqual([]);
  });
});

describe('what the egress policy lets through', () => {
  it('reaches a loopback server only through an allow entry naming its address and port', async () => {
    const res = await egressRequest(policy(), `${allowed.origin}/ok`);
    expect(res).toMatchObject({ status: 200, url: `${allowed.origin}/ok`, address: '127.0.0.1', redirects: [] });
    expect(res.body.toString()).toBe('allowed');
    expect((await refusal(new EgressPolicy({ resolver }), `${allowed.origin}/ok`)).rule).toBe('port');
    expect((await refusal(policy({ allow: [`127.0.0.1:${allowed.port + 1}`] }), `${allowed.origin}/ok`)).rule).toBe(
      'port',
    );
  });

  it('lets deny win over allow', async () => {
    const denied = policy({ allow: [`127.0.0.1:${allowed.port}`], deny: ['127.0.0.0/8'] });
    const err = await refusal(denied, `${allowed.origin}/ok`);
    expect(err.rule).toBe('deny-list');
    expect(err.message).toMatch(/EGRESS_DENY_HOSTS entry 127\.0\.0\.0\/8/);
    expect((await denied.vet('http://public.test/').catch((e: EgressDeniedError) => e)).constructor).not.toBe(
      EgressDeniedError,
    );
    const byName = policy({ deny: ['*.test'] });
    expect(await byName.vet('http://public.test/').catch((e: EgressDeniedError) => e.rule)).toBe('deny-list');
  });

  it('connects to the address it vetted: the name is resolved once and never again', async () => {
    lookups = [];
    const p = policy({ allow: [`loopback.test:${allowed.port}`] });
    const res = await egressRequest(p, `http://loopback.test:${allowed.port}/headers`);
    // loopback.test exists only in the test resolver: a second, system lookup would have failed.
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).host).toBe(`loopback.test:${allowed.port}`);
    expect(lookups).toEqual(['loopback.test']);
    expect(res.address).toBe('127.0.0.1');
  });

  it('follows relative redirects and up to five hops, each vetted, and refuses a sixth', async () => {
    const p = policy();
    const res = await egressRequest(p, `${allowed.origin}/hops/4`);
    expect(res.status).toBe(200);
    expect(res.redirects).toHaveLength(5);
    expect(res.url).toBe(`${allowed.origin}/ok`);
    const err = await egressRequest(p, `${allowed.origin}/hops/5`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebError);
    expect(err).toMatchObject({ code: 'too_many_redirects', retryable: false });
  });

  it('refuses a bad allow or deny entry at construction, naming it', () => {
    expect(() => new EgressPolicy({ allow: ['10.0.0.0/40'] })).toThrow(/EGRESS_ALLOW_HOSTS: "10\.0\.0\.0\/40"/);
    expect(() => EgressPolicy.fromEnv({ EGRESS_ALLOW_HOSTS: [], EGRESS_DENY_HOSTS: ['a:b'] })).toThrow(
      /EGRESS_DENY_HOSTS: "a:b"/,
    );
  });

  it('says when a name does not resolve, and whether that may pass', async () => {
    const err = await policy()
      .vet('http://nowhere.test/')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'dns_failed', retryable: false });
    const flaky = new EgressPolicy({
      resolver: async () => {
        throw Object.assign(new Error('timeout'), { code: 'EAI_AGAIN' });
      },
    });
    expect(await flaky.vet('http://public.test/').catch((e: unknown) => e)).toMatchObject({
      code: 'dns_failed',
      retryable: true,
    });
  });
});
