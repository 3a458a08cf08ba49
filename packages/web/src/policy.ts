import dns from 'node:dns';
import type { Env } from '@research/config';
import { addressRange, type IpAddress, parseAddress } from './address.js';
import { EgressDeniedError, WebError } from './errors.js';
import { type HostRule, parseHostRules, ruleMatchesHost } from './rules.js';

/** Resolves a host name to its addresses, once per request. */
export type Resolver = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

/** The operating system's resolver (getaddrinfo), in the order it answers. */
export const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

/** A vetted destination: the connection must go to `address`, and nowhere else. */
export interface Destination {
  readonly url: URL;
  /** As in the URL, normalised (IPv6 in brackets). */
  readonly hostname: string;
  readonly port: number;
  readonly address: string;
  readonly family: 4 | 6;
  /** The EGRESS_ALLOW_HOSTS entry that let it through, when the default rules alone would not have. */
  readonly allowedBy?: string;
}

export interface EgressPolicyOptions {
  /** EGRESS_ALLOW_HOSTS entries (see HostRule). Default: none. */
  allow?: readonly string[];
  /** EGRESS_DENY_HOSTS entries; a match refuses whatever allow says. Default: none. */
  deny?: readonly string[];
  /** Default: the system resolver. Tests pass their own, so no name is looked up on the network. */
  resolver?: Resolver;
  /** Ports reachable without an allow entry naming them. Default: 80 and 443. */
  standardPorts?: readonly number[];
  /** Called with each destination right before a connection to it is opened (logs, metrics, tests). */
  onConnect?: (destination: Destination) => void;
}

const LOCAL_NAMES = /^(localhost|localhost\.localdomain)$|\.localhost$/;

/** Resolver errors that may clear up on their own (a DNS server that timed out), as opposed to a name that does not exist. */
const TRANSIENT_DNS = new Set(['EAI_AGAIN', 'ETIMEOUT', 'ECONNREFUSED', 'ESERVFAIL', 'EAI_FAIL']);

/**
 * The one egress policy every outbound request of the system goes through (web fetches,
 * searches, webhooks). `vet` checks a URL and resolves its host once; the caller connects to
 * the address it returns (see `egressRequest`), so there is no second lookup that a DNS answer
 * with a short TTL could turn towards an internal address (DNS rebinding).
 *
 * Refused unless an allow entry covers them: loopback, private, link-local (the cloud
 * metadata address 169.254.169.254 included), CGNAT, multicast, unspecified, broadcast,
 * reserved and documentation ranges, their IPv6 forms and IPv6 forms that embed them, and
 * ports other than 80 and 443. Always refused: schemes other than http and https, URLs with
 * credentials, and what a deny entry covers.
 */
export class EgressPolicy {
  readonly #allow: HostRule[];
  readonly #deny: HostRule[];
  readonly #resolver: Resolver;
  readonly #standardPorts: ReadonlySet<number>;
  readonly #onConnect: ((destination: Destination) => void) | undefined;

  constructor(options: EgressPolicyOptions = {}) {
    this.#allow = parseHostRules(options.allow ?? [], 'EGRESS_ALLOW_HOSTS');
    this.#deny = parseHostRules(options.deny ?? [], 'EGRESS_DENY_HOSTS');
    this.#resolver = options.resolver ?? systemResolver;
    this.#standardPorts = new Set(options.standardPorts ?? [80, 443]);
    this.#onConnect = options.onConnect;
  }

  /** The policy the environment configures; a bad entry throws a HostRuleError naming its variable. */
  static fromEnv(
    env: Pick<Env, 'EGRESS_ALLOW_HOSTS' | 'EGRESS_DENY_HOSTS'>,
    options: Omit<EgressPolicyOptions, 'allow' | 'deny'> = {},
  ): EgressPolicy {
    return new EgressPolicy({ ...options, allow: env.EGRESS_ALLOW_HOSTS, deny: env.EGRESS_DENY_HOSTS });
  }

  /** Tells the policy's observer that a connection to `destination` is being opened. */
  connecting(destination: Destination): void {
    this.#onConnect?.(destination);
  }

  #allowedPort(rule: HostRule, port: number): boolean {
    return rule.port === undefined ? this.#standardPorts.has(port) : rule.port === port;
  }

  /**
   * Checks `input` and resolves its host once. Throws EgressDeniedError (naming the rule) for a
   * refused destination, WebError `dns_failed` when the name does not resolve.
   */
  async vet(input: string | URL): Promise<Destination> {
    const text = String(input);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new EgressDeniedError(
        text,
        'scheme',
        `${JSON.stringify(text.slice(0, 200))} is not an absolute http or https URL`,
      );
    }
    const where = url.href;
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new EgressDeniedError(where, 'scheme', `${url.protocol} URLs are not fetched; only http and https`);
    if (url.username !== '' || url.password !== '')
      throw new EgressDeniedError(where, 'credentials', 'URLs with a user name or password are not fetched');
    const hostname = url.hostname.endsWith('.') ? url.hostname.slice(0, -1) : url.hostname;
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    const literal = parseAddress(hostname);
    const name = literal ? '' : hostname;

    const denied = this.#deny.find(
      (r) => (r.port === undefined || r.port === port) && ruleMatchesHost(r, name, literal),
    );
    if (denied)
      throw new EgressDeniedError(
        where,
        'deny-list',
        `${hostname} is denied by EGRESS_DENY_HOSTS entry ${denied.text}`,
      );
    const byName = name
      ? this.#allow.find((r) => r.kind === 'name' && this.#allowedPort(r, port) && ruleMatchesHost(r, name))
      : undefined;
    if (name && LOCAL_NAMES.test(name) && !byName)
      throw new EgressDeniedError(where, 'host-name', `${name} always means this machine`);
    // Refused before any lookup when no entry could allow the port at all.
    if (!this.#standardPorts.has(port) && !this.#allow.some((r) => r.port === port))
      throw new EgressDeniedError(where, 'port', portMessage(hostname, port));

    const addresses = literal ? [literal] : await this.#resolve(where, name);
    let allowedBy: string | undefined = byName?.text;
    for (const address of addresses) {
      const deniedAddress = this.#deny.find(
        (r) => r.kind === 'range' && (r.port === undefined || r.port === port) && ruleMatchesHost(r, name, address),
      );
      if (deniedAddress)
        throw new EgressDeniedError(
          where,
          'deny-list',
          `${hostname} (${address}) is denied by EGRESS_DENY_HOSTS entry ${deniedAddress.text}`,
        );
      const rule =
        byName ??
        this.#allow.find((r) => r.kind === 'range' && this.#allowedPort(r, port) && ruleMatchesHost(r, name, address));
      if (!rule) {
        const range = addressRange(address);
        if (range !== 'unicast')
          throw new EgressDeniedError(
            where,
            'address',
            `${hostname}${literal ? '' : ` resolves to ${address}, which`} is in a refused range`,
            range,
          );
        if (!this.#standardPorts.has(port)) throw new EgressDeniedError(where, 'port', portMessage(hostname, port));
      }
      allowedBy ??= rule?.text;
    }
    const [first] = addresses;
    if (!first) throw new WebError(`${name} has no address`, { code: 'dns_failed', retryable: false });
    return {
      url,
      hostname,
      port,
      address: first.toString(),
      family: first.kind() === 'ipv4' ? 4 : 6,
      ...(allowedBy ? { allowedBy } : {}),
    };
  }

  async #resolve(where: string, name: string): Promise<IpAddress[]> {
    let answers: readonly { address: string; family: number }[];
    try {
      answers = await this.#resolver(name);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      throw new WebError(`${name} could not be resolved (${code || (err as Error).message})`, {
        code: 'dns_failed',
        retryable: TRANSIENT_DNS.has(code),
        cause: err,
      });
    }
    if (answers.length === 0) throw new WebError(`${name} has no address`, { code: 'dns_failed', retryable: false });
    return answers.map(({ address }) => {
      const parsed = parseAddress(address);
      // An answer that is not an address at all is not something to connect to.
      if (!parsed)
        throw new EgressDeniedError(
          where,
          'address',
          `${name} resolves to ${JSON.stringify(address)}, which is not an IP address`,
          'invalid',
        );
      return parsed;
    });
  }
}

function portMessage(hostname: string, port: number): string {
  return `port ${port} of ${hostname} is not allowed: only 80 and 443, unless an EGRESS_ALLOW_HOSTS entry names the host with this port`;
}
