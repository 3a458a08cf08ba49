import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * The range an address belongs to, by ipaddr.js's tables (RFC 6890 and friends): `unicast` for
 * an ordinary public address, else the special range (`loopback`, `private`, `linkLocal`,
 * `carrierGradeNat`, `multicast`, `unspecified`, `broadcast`, `reserved`, `uniqueLocal`…).
 *
 * IPv6 forms that carry an IPv4 address are judged by that address, so `::ffff:127.0.0.1`,
 * `64:ff9b::7f00:1` (NAT64) and `2002:7f00:1::` (6to4) are `…(loopback)`, and a public one
 * stays usable on an IPv6-only network with NAT64. Teredo hides its client address and the
 * deprecated IPv4-compatible `::a.b.c.d` has no use left: both are refused outright, as is
 * IPv6 outside the global unicast block 2000::/3 that ipaddr.js would call `unicast`.
 */
export function addressRange(address: IpAddress): string {
  if (address.kind() === 'ipv4') return address.range();
  const v6 = address as ipaddr.IPv6;
  const range = v6.range();
  const embedded = embeddedIPv4(v6, range);
  if (embedded) {
    const inner = embedded.range();
    return inner === 'unicast' ? 'unicast' : `${range}(${inner})`;
  }
  if (range !== 'unicast') return range;
  const parts = v6.parts;
  if (parts.slice(0, 6).every((p) => p === 0)) return 'ipv4Compatible';
  if (((parts[0] ?? 0) & 0xe000) !== 0x2000) return 'reserved';
  return 'unicast';
}

/** The IPv4 address inside a mapped, translated, NAT64 or 6to4 IPv6 address. */
function embeddedIPv4(v6: ipaddr.IPv6, range: string): ipaddr.IPv4 | undefined {
  const bytes = v6.toByteArray();
  const v4 = (at: number): ipaddr.IPv4 => new ipaddr.IPv4(bytes.slice(at, at + 4));
  switch (range) {
    case 'ipv4Mapped':
    case 'rfc6145':
      return v4(12);
    case 'rfc6052':
      // 64:ff9b::/96 carries it in the last 32 bits; the local-use 64:ff9b:1::/48 may put it
      // elsewhere, so that prefix is judged by its last 32 bits too and refused when they are special.
      return v4(12);
    case '6to4':
      return v4(2);
    default:
      return undefined;
  }
}

/**
 * Parses an address as a resolver or a URL gives it. ipaddr.js also reads the old shorthand
 * forms (`127.1`, `0x7f.1`, `2130706433`); the URL parser has normalised those already.
 */
export function parseAddress(text: string): IpAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // A zone index (`fe80::1%eth0`) names an interface of this machine; it is never a web address.
  if (bare.includes('%')) return undefined;
  try {
    // ipaddr.js reads `::127.0.0.1` as `::ffff:127.0.0.1`; the URL parser writes IPv6 the one
    // canonical way (`::7f00:1`), which ipaddr.js then reads as written.
    return ipaddr.parse(bare.includes(':') ? new URL(`http://[${bare}]/`).hostname.slice(1, -1) : bare);
  } catch {
    return undefined;
  }
}

/** An IPv4-mapped IPv6 address as the IPv4 address it is; anything else unchanged. */
export function unmapped(address: IpAddress): IpAddress {
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress())
    return (address as ipaddr.IPv6).toIPv4Address();
  return address;
}
