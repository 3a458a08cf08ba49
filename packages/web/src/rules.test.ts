import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { HostRuleError, parseHostRule, ruleMatchesHost } from './rules.js';

const parse = (entry: string) => parseHostRule(entry, 'EGRESS_ALLOW_HOSTS');

describe('host rules', () => {
  it('read names, subdomain wildcards, ports, addresses and CIDR ranges', () => {
    expect(parse('Example.COM.')).toMatchObject({ kind: 'name', name: 'example.com', subdomains: false });
    expect(parse('example.com:8443')).toMatchObject({ kind: 'name', name: 'example.com', port: 8443 });
    expect(parse('*.example.com')).toMatchObject({ kind: 'name', name: 'example.com', subdomains: true });
    expect(parse('bücher.example')).toMatchObject({ kind: 'name', name: 'xn--bcher-kva.example' });
    const loop = parse('127.0.0.1:8080');
    expect(loop).toMatchObject({ kind: 'range', port: 8080 });
    expect(loop.kind === 'range' && loop.range[0].toString()).toBe('127.0.0.1');
    expect(loop.kind === 'range' && loop.range[1]).toBe(32);
    // The URL parser's reading of an address, however it is written.
    for (const spelling of ['127.1:8080', '2130706433:8080', '0x7f000001:8080', '0177.0.0.1:8080']) {
      const rule = parse(spelling);
      expect(rule.kind === 'range' && rule.range[0].toString(), spelling).toBe('127.0.0.1');
    }
    expect(parse('10.0.0.0/8')).toMatchObject({ kind: 'range', range: [expect.anything(), 8] });
    expect(parse('10.0.0.0/8:8080')).toMatchObject({ kind: 'range', port: 8080 });
    expect(parse('fd00::/8')).toMatchObject({ kind: 'range', range: [expect.anything(), 8] });
    expect(parse('fd00::/8:443')).toMatchObject({ kind: 'range', port: 443 });
    expect(parse('[::1]:9000')).toMatchObject({ kind: 'range', port: 9000, range: [expect.anything(), 128] });
    expect(parse('::1')).toMatchObject({ kind: 'range', range: [expect.anything(), 128] });
    expect(parse('[fd00::/8]:443')).toMatchObject({ kind: 'range', port: 443 });
    const mapped = parse('::ffff:10.0.0.0/104');
    expect(mapped.kind === 'range' && `${mapped.range[0].toString()}/${mapped.range[1]}`).toBe('10.0.0.0/8');
  });

  it('refuse bad entries, naming the variable and the entry', () => {
    for (const bad of ['10.0.0.0/99', 'host:0', 'host:99999', 'host:http', '*.10.0.0.1', 'a b', '[::1', '']) {
      expect(() => parseHostRule(bad, 'EGRESS_DENY_HOSTS'), bad).toThrow(HostRuleError);
    }
    expect(() => parseHostRule('host:99999', 'EGRESS_DENY_HOSTS')).toThrow(
      'EGRESS_DENY_HOSTS: "host:99999" has a port that is not a number from 1 to 65535',
    );
  });

  it('match names exactly or by subdomain, and addresses by range (mapped IPv6 as IPv4)', () => {
    expect(ruleMatchesHost(parse('example.com'), 'example.com')).toBe(true);
    expect(ruleMatchesHost(parse('example.com'), 'www.example.com')).toBe(false);
    expect(ruleMatchesHost(parse('*.example.com'), 'www.example.com')).toBe(true);
    expect(ruleMatchesHost(parse('*.example.com'), 'example.com')).toBe(false);
    expect(ruleMatchesHost(parse('*.example.com'), 'badexample.com')).toBe(false);
    expect(ruleMatchesHost(parse('10.0.0.0/8'), '', ipaddr.parse('10.9.9.9'))).toBe(true);
    expect(ruleMatchesHost(parse('10.0.0.0/8'), '', ipaddr.parse('::ffff:10.9.9.9'))).toBe(true);
    expect(ruleMatchesHost(parse('10.0.0.0/8'), '', ipaddr.parse('11.0.0.1'))).toBe(false);
    expect(ruleMatchesHost(parse('fd00::/8'), '', ipaddr.parse('10.0.0.1'))).toBe(false);
  });
});
