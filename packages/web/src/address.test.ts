import { describe, expect, it } from 'vitest';
import { addressRange, parseAddress } from './address.js';

const range = (text: string): string => {
  const address = parseAddress(text);
  if (!address) throw new Error(`not an address: ${text}`);
  return addressRange(address);
};

describe('addressRange', () => {
  it.each([
    ['93.184.215.14', 'unicast'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.255', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.1', 'reserved'],
    ['198.51.100.7', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['2606:4700::1111', 'unicast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['fec0::1', 'deprecatedSiteLocal'],
    ['::ffff:127.0.0.1', 'ipv4Mapped(loopback)'],
    ['::ffff:169.254.169.254', 'ipv4Mapped(linkLocal)'],
    ['::ffff:10.0.0.1', 'ipv4Mapped(private)'],
    ['64:ff9b::127.0.0.1', 'rfc6052(loopback)'],
    ['64:ff9b::10.0.0.1', 'rfc6052(private)'],
    ['2002:7f00:1::', '6to4(loopback)'],
    ['2002:a9fe:a9fe::1', '6to4(linkLocal)'],
    ['::ffff:0:127.0.0.1', 'rfc6145(loopback)'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
    ['::127.0.0.1', 'ipv4Compatible'],
    ['::8.8.8.8', 'ipv4Compatible'],
    ['4000::1', 'reserved'],
  ])('%s is %s', (address, expected) => {
    expect(range(address)).toBe(expected);
  });

  it('lets IPv6 forms of a public IPv4 address through (NAT64 networks need them)', () => {
    expect(range('::ffff:93.184.215.14')).toBe('unicast');
    expect(range('64:ff9b::93.184.215.14')).toBe('unicast');
  });

  it('parses what resolvers and URLs give, but not zone indices', () => {
    expect(parseAddress('[::1]')?.toString()).toBe('::1');
    expect(parseAddress('127.0.0.1')?.toString()).toBe('127.0.0.1');
    expect(parseAddress('fe80::1%eth0')).toBeUndefined();
    expect(parseAddress('example.org')).toBeUndefined();
  });
});
