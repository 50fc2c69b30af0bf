/**
 * Firewall rule screening for the doctor: parses `iptables-save` and `nft list ruleset` into
 * a flat list of DROP/REJECT rules with the matches we understand (addresses, protocol,
 * ports, interfaces, conntrack state), and finds the rules that COULD match a flow. This is
 * deliberately not a firewall simulator: accepts before a drop, jumps and sets are not
 * followed; a rule is reported when nothing we understand rules it out, with its text.
 */
import { parseIpv4 } from '../core/wire/segment';
import { cidrContains, cidrOverlap, parseCidr, type Cidr } from './parse';

/** Netfilter hook a rule or flow is on. */
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'other';

/** A DROP or REJECT rule (or a DROP chain policy). */
export interface FwRule {
  /** Where it came from. */
  source: 'iptables' | 'nft';
  /** Table (`filter`, `raw`, `inet fw`...). */
  table: string;
  /** Chain name. */
  chain: string;
  /** Hook of the chain; 'other' for user chains (reached by a jump we do not follow). */
  hook: Hook;
  /** The rule as printed by the tool (or `policy DROP` for a chain policy). */
  text: string;
  /** True for a chain's default policy (drops what no rule accepted). */
  policy: boolean;
  /** Source blocks (any of them), null = any; a negated match counts as any. */
  src: Cidr[] | null;
  /** Destination blocks, null = any. */
  dst: Cidr[] | null;
  /** 'tcp', 'udp', ..., null = any. */
  proto: string | null;
  /** Source port ranges [lo, hi], null = any. */
  sport: [number, number][] | null;
  /** Destination port ranges, null = any. */
  dport: [number, number][] | null;
  /** Incoming interface pattern, null = any. */
  inIface: string | null;
  /** Outgoing interface pattern, null = any. */
  outIface: string | null;
  /** Conntrack states the rule requires (lower case), null = any. */
  ctState: string[] | null;
}

/** A packet flow to screen rules against. */
export interface FwFlow {
  /** Hooks the packets traverse. */
  hooks: readonly Hook[];
  /** Source: a block (the client net) or one address (/32). */
  src: Cidr | null;
  /** Destination block or address. */
  dst: Cidr | null;
  /** Protocol, 'tcp'. */
  proto: string;
  /** Source port, null = unknown/any. */
  sport: number | null;
  /** Destination port, null = unknown/any. */
  dport: number | null;
  /** Incoming interface when known. */
  inIface?: string;
  /** Outgoing interface when known. */
  outIface?: string;
}

function blank(source: FwRule['source'], table: string, chain: string, hook: Hook, text: string): FwRule {
  return {
    source,
    table,
    chain,
    hook,
    text,
    policy: false,
    src: null,
    dst: null,
    proto: null,
    sport: null,
    dport: null,
    inIface: null,
    outIface: null,
    ctState: null,
  };
}

function hookOfIptablesChain(chain: string): Hook {
  const h = chain.toLowerCase();
  return h === 'prerouting' || h === 'input' || h === 'forward' || h === 'output' || h === 'postrouting' ? h : 'other';
}

/** `8080`, `1000:2000`, `1000-2000`, `80,8080` -> ranges; null when unparsable. */
export function parsePorts(text: string): [number, number][] | null {
  const out: [number, number][] = [];
  for (const part of text.replace(/[{}\s]/g, ' ').split(/[ ,]+/)) {
    if (part === '') continue;
    const m = /^(\d+)(?:[:-](\d+))?$/.exec(part);
    if (!m) return null;
    const lo = Number(m[1]);
    out.push([lo, m[2] === undefined ? lo : Number(m[2])]);
  }
  return out.length > 0 ? out : null;
}

function parseAddrs(text: string): Cidr[] | null {
  const out: Cidr[] = [];
  for (const part of text.replace(/[{}]/g, ' ').split(/[\s,]+/)) {
    if (part === '') continue;
    const c = parseCidr(part);
    if (c === null) return null; // a named set, a range: cannot rule anything out
    out.push(c);
  }
  return out.length > 0 ? out : null;
}

/** Parses `iptables-save` output: every DROP/REJECT rule and every DROP policy. */
export function parseIptablesSave(text: string): { rules: FwRule[]; tables: Set<string>; nftBackend: boolean } {
  const rules: FwRule[] = [];
  const tables = new Set<string>();
  let table = '';
  const nftBackend = /\(nf_tables\)/.test(text);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      table = line.slice(1);
      tables.add(table);
      continue;
    }
    const pol = /^:(\S+)\s+(DROP|REJECT)\b/.exec(line);
    if (pol) {
      const chain = pol[1] as string;
      rules.push({
        ...blank('iptables', table, chain, hookOfIptablesChain(chain), `-P ${chain} ${pol[2] as string} (policy)`),
        policy: true,
      });
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const words = line.split(/\s+/);
    const chain = words[1] ?? '';
    const j = words.indexOf('-j');
    const target = j >= 0 ? words[j + 1] : undefined;
    if (target !== 'DROP' && target !== 'REJECT') continue;
    const r = blank('iptables', table, chain, hookOfIptablesChain(chain), line);
    for (let i = 2; i < words.length; i++) {
      const w = words[i] as string;
      const next = words[i + 1] ?? '';
      if (w === '!') {
        i++;
        continue;
      } // negated match: any
      if (w === '-s' || w === '--source') r.src = parseAddrs(next);
      else if (w === '-d' || w === '--destination') r.dst = parseAddrs(next);
      else if (w === '-p' || w === '--protocol') r.proto = next.toLowerCase();
      else if (w === '--dport' || w === '--dports' || w === '--destination-port') r.dport = parsePorts(next);
      else if (w === '--sport' || w === '--sports' || w === '--source-port') r.sport = parsePorts(next);
      else if (w === '-i' || w === '--in-interface') r.inIface = next;
      else if (w === '-o' || w === '--out-interface') r.outIface = next;
      else if (w === '--ctstate' || w === '--state') r.ctState = next.toLowerCase().split(',');
      else continue;
      i++;
    }
    rules.push(r);
  }
  return { rules, tables, nftBackend };
}

/** Parses `nft list ruleset`: DROP/REJECT rules and drop policies of base chains. */
export function parseNftRuleset(text: string): FwRule[] {
  const rules: FwRule[] = [];
  let table = '';
  let chain = '';
  let hook: Hook = 'other';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    let m = /^table\s+(\S+)\s+(\S+)\s*\{/.exec(line);
    if (m) {
      table = `${m[1] as string} ${m[2] as string}`;
      continue;
    }
    m = /^chain\s+(\S+)\s*\{/.exec(line);
    if (m) {
      chain = m[1] as string;
      hook = 'other';
      continue;
    }
    m = /^type\s+\S+\s+hook\s+(\S+)/.exec(line);
    if (m) {
      hook = hookOfIptablesChain(m[1] as string);
      if (/policy\s+drop/.test(line))
        rules.push({ ...blank('nft', table, chain, hook, `chain ${chain}: policy drop`), policy: true });
      continue;
    }
    if (!/\b(drop|reject)\b/.test(line) || line.startsWith('#')) continue;
    const r = blank('nft', table, chain, hook, line.replace(/\s*counter packets \d+ bytes \d+/, ''));
    const set = '(\\{[^}]*\\}|\\S+)';
    const grab = (re: string): string | null => new RegExp(re).exec(line)?.[1] ?? null;
    const s = grab(`ip saddr (?!!=)${set}`);
    if (s !== null) r.src = parseAddrs(s);
    const d = grab(`ip daddr (?!!=)${set}`);
    if (d !== null) r.dst = parseAddrs(d);
    const proto = grab('(?:ip protocol|meta l4proto) (\\w+)') ?? grab('\\b(tcp|udp) [sd]port');
    if (proto !== null) r.proto = proto;
    const dp = grab(`(?:tcp|udp|th) dport (?!!=)${set}`);
    if (dp !== null) r.dport = parsePorts(dp);
    const sp = grab(`(?:tcp|udp|th) sport (?!!=)${set}`);
    if (sp !== null) r.sport = parsePorts(sp);
    const iif = grab('iifname (?!!=)"?([^"\\s]+)"?');
    if (iif !== null) r.inIface = iif;
    const oif = grab('oifname (?!!=)"?([^"\\s]+)"?');
    if (oif !== null) r.outIface = oif;
    const ct = grab(`ct state (?!!=)${set}`);
    if (ct !== null) r.ctState = ct.replace(/[{}\s]/g, '').split(',');
    rules.push(r);
  }
  return rules;
}

/**
 * Merges both listings: with the iptables-nft backend the iptables tables also appear in the
 * nft ruleset (as `ip filter` etc.); those nft copies are dropped.
 */
export function mergeRulesets(ipt: ReturnType<typeof parseIptablesSave> | null, nft: FwRule[] | null): FwRule[] {
  const out = ipt ? [...ipt.rules] : [];
  for (const r of nft ?? []) {
    const [family, name] = r.table.split(' ');
    if (ipt && ipt.nftBackend && family === 'ip' && name !== undefined && ipt.tables.has(name)) continue;
    out.push(r);
  }
  return out;
}

function ifaceMatches(pattern: string | null, dev: string | undefined): boolean {
  if (pattern === null || dev === undefined) return true;
  if (pattern.endsWith('+') || pattern.endsWith('*')) return dev.startsWith(pattern.slice(0, -1));
  return pattern === dev;
}

function addrMatches(rule: Cidr[] | null, flow: Cidr | null): boolean {
  if (rule === null || flow === null) return true;
  return rule.some((c) => cidrOverlap(c, flow));
}

function portMatches(rule: [number, number][] | null, port: number | null): boolean {
  if (rule === null || port === null) return true;
  return rule.some(([lo, hi]) => port >= lo && port <= hi);
}

/**
 * Rules that could drop packets of `flow`: same hook, and none of the understood matches
 * rules the flow out. Conntrack-state rules are included (see isInvalidOnly to tell them
 * apart); policies are not (see the caller).
 */
export function rulesThatCouldDrop(rules: readonly FwRule[], flow: FwFlow): FwRule[] {
  return rules.filter(
    (r) =>
      !r.policy &&
      (flow.hooks.includes(r.hook) || r.hook === 'other') &&
      (r.proto === null || r.proto === flow.proto || r.proto === 'all') &&
      addrMatches(r.src, flow.src) &&
      addrMatches(r.dst, flow.dst) &&
      portMatches(r.sport, flow.sport) &&
      portMatches(r.dport, flow.dport) &&
      ifaceMatches(r.inIface, flow.inIface) &&
      ifaceMatches(r.outIface, flow.outIface),
  );
}

/** True when the rule only matches conntrack INVALID packets (the classic `--ctstate INVALID -j DROP`). */
export function isInvalidOnly(r: FwRule): boolean {
  return r.ctState !== null && r.ctState.length === 1 && r.ctState[0] === 'invalid';
}

/** A single address as a /32 block (null for bad text). */
export function hostCidr(ip: string): Cidr | null {
  const v = parseIpv4(ip);
  return v < 0 ? null : { base: v, bits: 32 };
}

/** True when `ip` (dotted) lies in any of `blocks`. */
export function inAny(blocks: readonly Cidr[], ip: number): boolean {
  return blocks.some((b) => cidrContains(b, ip));
}
