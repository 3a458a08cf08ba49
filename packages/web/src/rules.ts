import type ipaddr from 'ipaddr.js';
import { type IpAddress, parseAddress, unmapped } from './address.js';

/**
 * One entry of EGRESS_ALLOW_HOSTS or EGRESS_DENY_HOSTS. Forms:
 * `example.com`, `*.example.com` (its subdomains, not itself), `example.com:8443`,
 * `127.0.0.1:8080`, `10.0.0.0/8`, `10.0.0.0/8:8080`, `::1`, `fd00::/8`, `[::1]:8080`, `[fd00::/8]:443`.
 * Without a port an entry matches the standard ports only when allowing (80 and 443; other
 * ports need the entry to name them) and every port when denying.
 */
export type HostRule =
  | {
      readonly kind: 'name';
      readonly name: string;
      readonly subdomains: boolean;
      readonly port?: number;
      readonly text: string;
    }
  | { readonly kind: 'range'; readonly range: [IpAddress, number]; readonly port?: number; readonly text: string };

/** A bad entry: names the variable and the entry, so the process stops with a message one can act on. */
export class HostRuleError extends Error {
  override readonly name = 'HostRuleError';
  constructor(
    readonly variable: string,
    readonly entry: string,
    reason: string,
  ) {
    super(`${variable}: ${JSON.stringify(entry)} ${reason}`);
  }
}

/** What a host is in a URL: the WHATWG parser's normalised hostname (lowercase, punycode, IPv4 in dotted form). */
export function normaliseHost(host: string): string | undefined {
  try {
    const hostname = new URL(`http://${host}/`).hostname;
    return hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  } catch {
    return undefined;
  }
}

function parsePort(text: string, variable: string, entry: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65_535)
    throw new HostRuleError(variable, entry, 'has a port that is not a number from 1 to 65535');
  return port;
}

/** Splits `host[:port]`, `[v6][:port]` and bare IPv6 (which has no port). */
function splitPort(entry: string, variable: string): { host: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  if (bracketed) {
    const host = bracketed[1] ?? '';
    return bracketed[2] === undefined ? { host } : { host, port: parsePort(bracketed[2], variable, entry) };
  }
  const colons = entry.split(':').length - 1;
  if (colons === 1) {
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at), port: parsePort(entry.slice(at + 1), variable, entry) };
  }
  // `fd00::/8:443`: after a prefix length, a colon can only start a port.
  const cidrPort = /^(.+\/\d{1,3}):(\d+)$/.exec(entry);
  if (colons > 1 && cidrPort) return { host: cidrPort[1] ?? '', port: parsePort(cidrPort[2] ?? '', variable, entry) };
  return { host: entry };
}

export function parseHostRule(entry: string, variable: string): HostRule {
  const text = entry.trim();
  if (text === '') throw new HostRuleError(variable, entry, 'is empty');
  const { host, port } = splitPort(text, variable);
  const withPort = port === undefined ? {} : { port };
  if (host.includes('/')) {
    const [base = '', bitsText = ''] = host.split('/');
    const address = parseAddress(base);
    const bits = Number(bitsText);
    const max = address?.kind() === 'ipv4' ? 32 : 128;
    if (!address || !/^\d{1,3}$/.test(bitsText) || bits > max)
      throw new HostRuleError(variable, entry, 'is not a valid CIDR range (like 10.0.0.0/8 or fd00::/8)');
    // `::ffff:10.0.0.0/104` is the IPv4 range 10.0.0.0/8: addresses are compared unmapped.
    const v4 = unmapped(address);
    const range: [IpAddress, number] = v4 === address || bits < 96 ? [address, bits] : [v4, bits - 96];
    return { kind: 'range', range, ...withPort, text };
  }
  const subdomains = host.startsWith('*.');
  const normalised = normaliseHost(subdomains ? host.slice(2) : host.includes(':') ? `[${host}]` : host);
  if (!normalised) throw new HostRuleError(variable, entry, 'is not a host name, address or CIDR range');
  const address = parseAddress(normalised);
  if (address) {
    if (subdomains) throw new HostRuleError(variable, entry, 'puts "*." before an address');
    const single = unmapped(address);
    return { kind: 'range', range: [single, single.kind() === 'ipv4' ? 32 : 128], ...withPort, text };
  }
  return { kind: 'name', name: normalised, subdomains, ...withPort, text };
}

/** Parses a whole list; the first bad entry throws a HostRuleError naming it. */
export function parseHostRules(entries: readonly string[], variable: string): HostRule[] {
  return entries.map((e) => parseHostRule(e, variable));
}

/** Whether `rule` covers this host name (normalised) or address. */
export function ruleMatchesHost(rule: HostRule, hostname: string, address?: IpAddress): boolean {
  if (rule.kind === 'name') return rule.subdomains ? hostname.endsWith(`.${rule.name}`) : hostname === rule.name;
  if (!address) return false;
  const a = unmapped(address);
  const [base, bits] = rule.range;
  if (a.kind() === 'ipv4' && base.kind() === 'ipv4') return (a as ipaddr.IPv4).match(base as ipaddr.IPv4, bits);
  if (a.kind() === 'ipv6' && base.kind() === 'ipv6') return (a as ipaddr.IPv6).match(base as ipaddr.IPv6, bits);
  return false;
}
