/**
 * Pure parsing and canonicalisation of iproute2 state: `ip -N -j rule|route|addr`
 * from the gateway, and `ip rule add` / `ip route add` argument text from templates.
 * Both sides end up in one canonical text, which is itself valid `ip rule` / `ip route`
 * argument syntax (so apply can pass it back to `ip rule del` / `ip route del`).
 *
 * Hostile output: a value that is not a valid interface name, IPv4 address or number
 * never comes out as one. An interface or address that fails validation is dropped with
 * a warning (it cannot be one the inventory names, since those are validated the same
 * way); a bad value in a rule or route lbprov owns throws ParseError (guessing there
 * could make the diff delete or keep the wrong thing); entries outside lbprov's ranges
 * are skipped unread. Output that is not a JSON array throws ParseError.
 */
import type { InterfaceFacts } from '../model/facts.js';
import type { RouteTableResource, RoutingRuleResource } from '../model/resources.js';
import { ParseError, excerptOf } from './parse-error.js';

export interface CanonicalIpRule {
  priority: number;
  /** `ip rule` text after the priority: "from all fwmark 0x10000000/0xf0000000 lookup 101". */
  selector: string;
}

export interface CanonicalRoute {
  table: number;
  /** `ip route` text without table: "default via 203.0.113.1 dev wan1". */
  route: string;
}

// ---------------------------------------------------------------------------
// Validation of untrusted values

const MAX_JSON_CHARS = 64 * 1024 * 1024;
const MAX_ENTRIES = 2_000_000;
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** Linux interface names: 1-15 bytes, no '/', ':', whitespace or control characters, not "." or "..". */
export function isInterfaceName(name: string): boolean {
  return (
    name !== '.' &&
    name !== '..' &&
    Buffer.byteLength(name) >= 1 &&
    Buffer.byteLength(name) <= 15 &&
    !/[\s/:\u0000-\u001f\u007f]/.test(name)
  );
}

export function isIpv4(text: string): boolean {
  return IPV4.test(text);
}

/** A validated dotted quad as an unsigned 32-bit number. */
export function ipv4ToNumber(text: string): number {
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

const MAIN_TABLE = 254;
const TABLE_NAMES: Record<string, number> = { main: 254, local: 255, default: 253 };

// /etc/iproute2/rt_protos, for `proto NAME` in templates and non -N output.
const ROUTE_PROTOCOLS: Record<string, number> = {
  unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, gated: 8, ra: 9, mrt: 10, zebra: 11, bird: 12,
  dnrouted: 13, xorp: 14, ntk: 15, dhcp: 16, keepalived: 18, babel: 42, openr: 99, bgp: 186, isis: 187,
  ospf: 188, rip: 189, eigrp: 192,
};

const IP_PROTOCOLS: Record<string, string> = { '1': 'icmp', '6': 'tcp', '17': 'udp', '47': 'gre', '50': 'esp', '51': 'ah', '132': 'sctp' };

// rtnetlink route types, numeric in -N output.
const ROUTE_TYPES: Record<string, string> = {
  '1': 'unicast', '2': 'local', '3': 'broadcast', '4': 'anycast', '5': 'multicast', '6': 'blackhole',
  '7': 'unreachable', '8': 'prohibit', '9': 'throw', '10': 'nat',
};
const RULE_ACTIONS = new Set(['blackhole', 'unreachable', 'prohibit']);

class Reader {
  constructor(readonly what: string) {}

  fail(problem: string, value?: unknown): never {
    throw new ParseError(this.what, problem, undefined, value === undefined ? undefined : excerptOf(safeString(value)));
  }

  u32(value: unknown, label: string, base: 'auto' | 10 | 16 = 'auto'): number {
    let n: number | undefined;
    if (typeof value === 'number' && Number.isInteger(value)) n = value;
    else if (typeof value === 'string') {
      if (base === 16 && /^(0x)?[0-9a-f]{1,8}$/i.test(value)) n = parseInt(value.replace(/^0x/i, ''), 16);
      else if (base !== 16 && /^0x[0-9a-f]{1,8}$/i.test(value)) n = parseInt(value.slice(2), 16);
      else if (base === 'auto' && /^0[0-7]+$/.test(value)) n = parseInt(value, 8);
      else if (base !== 16 && /^\d{1,10}$/.test(value)) n = Number(value);
    }
    if (n === undefined || n < 0 || n > 0xffffffff) this.fail(`${label} is not a 32-bit number`, value);
    return n;
  }

  ipv4(value: unknown, label: string): string {
    if (typeof value !== 'string' || !isIpv4(value)) this.fail(`${label} is not an IPv4 address`, value);
    return value;
  }

  iface(value: unknown, label: string): string {
    if (typeof value !== 'string' || !isInterfaceName(value)) this.fail(`${label} is not an interface name`, value);
    return value;
  }

  table(value: unknown): number {
    if (typeof value === 'string' && value in TABLE_NAMES) return TABLE_NAMES[value]!;
    if (typeof value === 'string' && !/^\d+$/.test(value)) {
      this.fail('table is a name, not a number (read rules and routes with `ip -N`)', value);
    }
    return this.u32(value, 'table', 10);
  }

  protocol(value: unknown): number {
    if (typeof value === 'string' && value in ROUTE_PROTOCOLS) return ROUTE_PROTOCOLS[value]!;
    const n = this.u32(value, 'protocol', 10);
    if (n > 255) this.fail('protocol is out of range', value);
    return n;
  }

  /** A word that is safe to print back into `ip` syntax (group names, realms, unknown attributes). */
  word(value: unknown, label: string): string {
    const text = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
    if (typeof text !== 'string' || !/^[A-Za-z0-9_.\-/]{1,64}$/.test(text)) this.fail(`${label} has an unexpected value`, value);
    return text;
  }

  /** "a.b.c.d" or "a.b.c.d/len" with len 0..32. */
  prefix(text: string, label: string): { addr: string; len: number } {
    const [addr, len, extra] = text.split('/');
    if (extra !== undefined || addr === undefined || !isIpv4(addr)) this.fail(`${label} is not an IPv4 prefix`, text);
    if (len !== undefined && (!/^\d{1,2}$/.test(len) || Number(len) > 32)) this.fail(`${label} has a bad prefix length`, text);
    return { addr, len: len === undefined ? 32 : Number(len) };
  }
}

function safeString(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** The JSON array `ip -j` prints, given either its text or its parsed value. */
function jsonArray(input: unknown, what: string): unknown[] {
  let value = input;
  if (typeof input === 'string') {
    if (input.length > MAX_JSON_CHARS) throw new ParseError(what, `output is too large (${input.length} characters)`);
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new ParseError(what, `not valid JSON (truncated?): ${(err as Error).message}`);
    }
  }
  if (!Array.isArray(value)) throw new ParseError(what, 'expected a JSON array', undefined, excerptOf(safeString(value), 60));
  if (value.length > MAX_ENTRIES) throw new ParseError(what, `too many entries (${value.length})`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------
// ip rule

interface RuleFields {
  not: boolean;
  from: string; // "all" or a prefix as ip prints it
  to?: string;
  tos?: number;
  fwmark?: { mark: number; mask: number };
  iif?: string;
  oif?: string;
  l3mdev: boolean;
  uidrange?: [number, number];
  ipproto?: string;
  sport?: [number, number];
  dport?: [number, number];
  tunId?: string;
  table?: number;
  suppressPrefixlength?: number;
  suppressIfgroup?: string;
  realms?: string;
  goto?: number;
  action?: string; // blackhole | unreachable | prohibit | nop
  protocol?: number;
  extra: string[];
}

function newRuleFields(): RuleFields {
  return { not: false, from: 'all', l3mdev: false, extra: [] };
}

/** Selector order of `ip rule show` (iproute2 print_rule). */
function ruleSelector(f: RuleFields): string {
  const out: string[] = [];
  if (f.not) out.push('not');
  out.push('from', f.from);
  if (f.to) out.push('to', f.to);
  if (f.tos) out.push('tos', `0x${f.tos.toString(16).padStart(2, '0')}`);
  if (f.fwmark && (f.fwmark.mark !== 0 || f.fwmark.mask !== 0)) {
    out.push('fwmark', f.fwmark.mask === 0xffffffff ? hex(f.fwmark.mark) : `${hex(f.fwmark.mark)}/${hex(f.fwmark.mask)}`);
  }
  if (f.iif) out.push('iif', f.iif);
  if (f.oif) out.push('oif', f.oif);
  if (f.l3mdev) out.push('l3mdev');
  if (f.uidrange) out.push('uidrange', `${f.uidrange[0]}-${f.uidrange[1]}`);
  if (f.ipproto) out.push('ipproto', f.ipproto);
  for (const [name, range] of [['sport', f.sport], ['dport', f.dport]] as const) {
    if (range) out.push(name, range[0] === range[1] ? String(range[0]) : `${range[0]}-${range[1]}`);
  }
  if (f.tunId) out.push('tun_id', f.tunId);
  const toTable = f.goto === undefined && f.action === undefined && !f.l3mdev;
  if (toTable) out.push('lookup', String(f.table ?? MAIN_TABLE));
  if (f.suppressPrefixlength !== undefined) out.push('suppress_prefixlength', String(f.suppressPrefixlength));
  if (f.suppressIfgroup !== undefined) out.push('suppress_ifgroup', f.suppressIfgroup);
  if (f.realms) out.push('realms', f.realms);
  if (f.goto !== undefined) out.push('goto', String(f.goto));
  if (f.action) out.push(f.action);
  if (f.protocol) out.push('proto', String(f.protocol));
  out.push(...f.extra);
  return out.join(' ');
}

function rulePrefix(r: Reader, text: string, label: string): string | undefined {
  if (['all', 'any', 'default', '0/0'].includes(text)) return undefined;
  const { addr, len } = r.prefix(text, label);
  // The kernel keeps host bits in rule prefixes (measured): only /32 and /0 are rewritten.
  if (len === 0) return undefined;
  return len === 32 ? addr : `${addr}/${len}`;
}

function portRange(r: Reader, text: string, label: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) r.fail(`${label} is not a port or range`, text);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first > 65535 || last > 65535 || last < first) r.fail(`${label} is not a port or range`, text);
  return [first, last];
}

function ipProtocolName(r: Reader, value: unknown): string {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string') r.fail('ipproto has an unexpected value', value);
  const numeric = /^(?:ipproto-)?(\d{1,3})$/.exec(text)?.[1];
  if (numeric !== undefined) return IP_PROTOCOLS[numeric] ?? numeric;
  return r.word(text, 'ipproto').toLowerCase();
}

const RULE_JSON_IGNORED = new Set(['priority', 'iif_detached', 'oif_detached', 'unresolved', 'flags']);

/** One element of `ip -N -j rule show` (table names main/local/default are accepted too). */
export function canonicalIpRuleFromJson(obj: unknown): CanonicalIpRule {
  const r: Reader = new Reader('ip -j rule');
  if (!isRecord(obj)) r.fail('rule is not an object', obj);
  const priority = r.u32(obj.priority, 'priority', 10);
  const f = newRuleFields();
  const srcLen = obj.srclen === undefined ? 32 : r.u32(obj.srclen, 'srclen', 10);
  const dstLen = obj.dstlen === undefined ? 32 : r.u32(obj.dstlen, 'dstlen', 10);
  for (const [key, value] of Object.entries(obj)) {
    switch (key) {
      case 'not':
        f.not = true;
        break;
      case 'src':
        f.from = value === 'all' ? 'all' : rulePrefix(r, `${r.ipv4(value, 'src')}/${srcLen}`, 'src') ?? 'all';
        break;
      case 'dst':
        f.to = value === 'all' ? undefined : rulePrefix(r, `${r.ipv4(value, 'dst')}/${dstLen}`, 'dst');
        break;
      case 'srclen':
      case 'dstlen':
        break;
      case 'tos':
        f.tos = r.u32(value, 'tos', 16);
        break;
      case 'fwmark':
        f.fwmark = { mark: r.u32(value, 'fwmark'), mask: obj.fwmask === undefined ? 0xffffffff : r.u32(obj.fwmask, 'fwmask') };
        break;
      case 'fwmask':
        if (obj.fwmark === undefined) f.fwmark = { mark: 0, mask: r.u32(value, 'fwmask') };
        break;
      case 'iif':
        f.iif = r.iface(value, 'iif');
        break;
      case 'oif':
        f.oif = r.iface(value, 'oif');
        break;
      case 'l3mdev':
        f.l3mdev = true;
        break;
      case 'uid_start':
        f.uidrange = [r.u32(value, 'uid_start', 10), r.u32(obj.uid_end, 'uid_end', 10)];
        break;
      case 'uid_end':
        break;
      case 'ipproto':
        f.ipproto = ipProtocolName(r, value);
        break;
      case 'sport':
      case 'dport':
        f[key] = portRange(r, String(r.u32(value, key, 10)), key);
        break;
      case 'sport_start':
      case 'dport_start': {
        const name = key === 'sport_start' ? 'sport' : 'dport';
        f[name] = portRange(r, `${r.u32(value, key, 10)}-${r.u32(obj[`${name}_end`], `${name}_end`, 10)}`, name);
        break;
      }
      case 'sport_end':
      case 'dport_end':
        break;
      case 'tun_id':
        f.tunId = r.word(value, 'tun_id');
        break;
      case 'table':
        f.table = r.table(value);
        break;
      case 'suppress_prefixlen':
        f.suppressPrefixlength = r.u32(value, 'suppress_prefixlen', 10);
        break;
      case 'suppress_ifgroup':
        f.suppressIfgroup = r.word(value, 'suppress_ifgroup');
        break;
      case 'flow_to':
        f.realms = obj.flow_from === undefined ? r.word(value, 'realms') : `${r.word(obj.flow_from, 'realms')}/${r.word(value, 'realms')}`;
        break;
      case 'flow_from':
        if (obj.flow_to === undefined) f.realms = `${r.word(value, 'realms')}/0`;
        break;
      case 'goto':
        f.goto = r.u32(value, 'goto', 10);
        break;
      case 'nop':
        f.action = 'nop';
        break;
      case 'action': {
        const action = ROUTE_TYPES[String(value)] ?? String(value);
        if (!RULE_ACTIONS.has(action)) r.fail('unknown rule action', value);
        f.action = action;
        break;
      }
      case 'protocol':
        f.protocol = r.protocol(value);
        break;
      default:
        if (RULE_JSON_IGNORED.has(key)) break;
        // Attributes newer than this parser still make the rule differ instead of vanishing.
        f.extra.push(r.word(key, 'attribute name'));
        if (value !== null) f.extra.push(r.word(value, key));
    }
  }
  return { priority, selector: ruleSelector(f) };
}

/** `ip rule add` arguments as a template writes them: "priority 101 from all fwmark 0x1/0xff lookup 101". */
export function canonicalIpRuleFromText(text: string): CanonicalIpRule {
  const r: Reader = new Reader('ip rule');
  if (/[\u0000-\u001f\u007f]/.test(text)) r.fail('control character in rule', text);
  const args = text.trim().split(/ +/).filter((a) => a !== '');
  const f = newRuleFields();
  let priority: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const key = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) r.fail(`${key} needs a value`);
      return v;
    };
    switch (key) {
      case 'not':
        f.not = true;
        break;
      case 'from':
        f.from = rulePrefix(r, value(), 'from') ?? 'all';
        break;
      case 'to':
        f.to = rulePrefix(r, value(), 'to');
        break;
      case 'tos':
      case 'dsfield':
        f.tos = r.u32(value(), 'tos', 16);
        break;
      case 'fwmark': {
        const [mark, mask, extra] = value().split('/');
        if (extra !== undefined) r.fail('bad fwmark', args[i]);
        const markValue = r.u32(mark, 'fwmark');
        // The kernel gives a non-zero mark without mask the full mask, and mark 0 none.
        f.fwmark = { mark: markValue, mask: mask === undefined ? (markValue === 0 ? 0 : 0xffffffff) : r.u32(mask, 'fwmask') };
        break;
      }
      case 'priority':
      case 'preference':
      case 'pref':
      case 'order':
        priority = r.u32(value(), 'priority', 10);
        break;
      case 'table':
      case 'lookup':
        f.table = r.table(value());
        break;
      case 'suppress_prefixlength':
        f.suppressPrefixlength = r.u32(value(), 'suppress_prefixlength', 10);
        break;
      case 'suppress_ifgroup':
        f.suppressIfgroup = r.word(value(), 'suppress_ifgroup');
        break;
      case 'realms':
        f.realms = r.word(value(), 'realms');
        break;
      case 'goto':
        f.goto = r.u32(value(), 'goto', 10);
        break;
      case 'iif':
      case 'dev':
        f.iif = r.iface(value(), 'iif');
        break;
      case 'oif':
        f.oif = r.iface(value(), 'oif');
        break;
      case 'l3mdev':
        f.l3mdev = true;
        break;
      case 'uidrange': {
        const m = /^(\d+)-(\d+)$/.exec(value());
        if (!m) r.fail('uidrange is not N-M', args[i]);
        f.uidrange = [r.u32(m[1], 'uidrange', 10), r.u32(m[2], 'uidrange', 10)];
        break;
      }
      case 'ipproto':
        f.ipproto = ipProtocolName(r, value());
        break;
      case 'sport':
      case 'dport':
        f[key] = portRange(r, value(), key);
        break;
      case 'tun_id':
        f.tunId = String(r.u32(value(), 'tun_id', 10));
        break;
      case 'protocol':
      case 'proto':
        f.protocol = r.protocol(value());
        break;
      case 'nop':
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
        f.action = key;
        break;
      case 'unicast':
        break;
      default:
        r.fail(`unknown ip rule keyword ${excerptOf(key)}`);
    }
  }
  if (priority === undefined) r.fail('a priority is required (lbprov owns rules by priority)', text);
  return { priority, selector: ruleSelector(f) };
}

/**
 * The rules at priorities lbprov owns ([first, last]) from `ip -N -j rule show`.
 * Several rules at one priority get ids "ip-rule:P", "ip-rule:P#2", ...
 */
export function parseIpRules(json: unknown, first: number, last: number, warnings: string[] = []): RoutingRuleResource[] {
  const out: RoutingRuleResource[] = [];
  const seen = new Map<number, number>();
  for (const entry of jsonArray(json, 'ip -j rule')) {
    if (!isRecord(entry) || typeof entry.priority !== 'number') {
      throw new ParseError('ip -j rule', 'rule without a numeric priority', undefined, excerptOf(safeString(entry)));
    }
    if (entry.priority < first || entry.priority > last) continue;
    const { priority, selector } = canonicalIpRuleFromJson(entry);
    const count = (seen.get(priority) ?? 0) + 1;
    seen.set(priority, count);
    if (count > 1) warnings.push(`ip rule: ${count} rules at priority ${priority}`);
    out.push({ kind: 'ip-rule', id: count === 1 ? `ip-rule:${priority}` : `ip-rule:${priority}#${count}`, family: 'ipv4', priority, selector });
  }
  return out;
}

// ---------------------------------------------------------------------------
// ip route

interface Nexthop {
  via?: string;
  dev?: string;
  weight: number;
  onlink: boolean;
}

interface RouteFields {
  type?: string; // omitted for unicast
  dst: string;
  tos?: number;
  via?: string;
  dev?: string;
  src?: string;
  metric?: number;
  onlink: boolean;
  metrics: string[];
  nexthops: Nexthop[];
}

/** Order of `ip route show` (iproute2 print_route), minus what the kernel adds (proto, scope, state flags). */
function routeText(f: RouteFields): string {
  const out: string[] = [];
  if (f.type && f.type !== 'unicast') out.push(f.type);
  out.push(f.dst);
  if (f.tos) out.push('tos', `0x${f.tos.toString(16).padStart(2, '0')}`);
  if (f.via) out.push('via', f.via);
  if (f.dev) out.push('dev', f.dev);
  if (f.src) out.push('src', f.src);
  if (f.metric) out.push('metric', String(f.metric));
  if (f.onlink) out.push('onlink');
  out.push(...f.metrics);
  for (const hop of f.nexthops) {
    out.push('nexthop');
    if (hop.via) out.push('via', hop.via);
    if (hop.dev) out.push('dev', hop.dev);
    out.push('weight', String(hop.weight));
    if (hop.onlink) out.push('onlink');
  }
  return out.join(' ');
}

function routeDestination(r: Reader, text: string): string {
  if (text === 'default' || text === 'all' || text === 'any') return 'default';
  const { addr, len } = r.prefix(text, 'destination');
  if (len === 0) {
    if (addr !== '0.0.0.0') r.fail('destination has host bits set', text);
    return 'default';
  }
  const mask = len === 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0;
  // ip route add refuses host bits ("Invalid prefix for given prefix length"), so they mean a typo.
  if (((ipv4ToNumber(addr) & ~mask) >>> 0) !== 0) r.fail('destination has host bits set', text);
  return len === 32 ? addr : `${addr}/${len}`;
}

const ROUTE_JSON_IGNORED = new Set(['table', 'protocol', 'scope', 'pref', 'expires', 'cache', 'uid']);
const METRIC_KEYS = /^(mtu|advmss|window|rtt|rttvar|reordering|hoplimit|initcwnd|initrwnd|quickack|features|congctl|fastopen_no_cookie|ssthresh|cwnd|rto_min)$/;

function flagsOf(r: Reader, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) r.fail('flags is not a list of words', value);
  return value as string[];
}

/** One element of `ip -N -j route show table all`; a missing "table" is the main table. */
export function canonicalRouteFromJson(obj: unknown): CanonicalRoute {
  const r: Reader = new Reader('ip -j route');
  if (!isRecord(obj)) r.fail('route is not an object', obj);
  const table = obj.table === undefined ? MAIN_TABLE : r.table(obj.table);
  if (typeof obj.dst !== 'string') r.fail('route without a destination', obj);
  const f: RouteFields = { dst: routeDestination(r, obj.dst), onlink: false, metrics: [], nexthops: [] };
  for (const [key, value] of Object.entries(obj)) {
    switch (key) {
      case 'dst':
        break;
      case 'type':
        f.type = ROUTE_TYPES[String(value)] ?? r.word(value, 'type');
        break;
      case 'tos':
        f.tos = r.u32(value, 'tos', 16);
        break;
      case 'gateway':
        f.via = r.ipv4(value, 'gateway');
        break;
      case 'dev':
        f.dev = r.iface(value, 'dev');
        break;
      case 'prefsrc':
        f.src = r.ipv4(value, 'prefsrc');
        break;
      case 'metric':
        f.metric = r.u32(value, 'metric', 10);
        break;
      case 'flags':
        f.onlink = flagsOf(r, value).includes('onlink');
        break;
      case 'metrics':
        if (!Array.isArray(value)) r.fail('metrics is not a list', value);
        for (const m of value) {
          if (!isRecord(m)) r.fail('metric is not an object', m);
          for (const [name, v] of Object.entries(m)) {
            if (!METRIC_KEYS.test(name)) r.fail('unknown route metric', name);
            f.metrics.push(name, r.word(v, name));
          }
        }
        break;
      case 'nexthops':
        if (!Array.isArray(value)) r.fail('nexthops is not a list', value);
        for (const hop of value) {
          if (!isRecord(hop)) r.fail('nexthop is not an object', hop);
          f.nexthops.push({
            via: hop.gateway === undefined ? undefined : r.ipv4(hop.gateway, 'nexthop gateway'),
            dev: hop.dev === undefined ? undefined : r.iface(hop.dev, 'nexthop dev'),
            weight: hop.weight === undefined ? 1 : r.u32(hop.weight, 'weight', 10),
            onlink: flagsOf(r, hop.flags).includes('onlink'),
          });
        }
        break;
      default:
        if (!ROUTE_JSON_IGNORED.has(key)) r.fail(`unknown route attribute ${excerptOf(key)}`, value);
    }
  }
  return { table, route: routeText(f) };
}

const ROUTE_TYPE_WORDS = new Set(Object.values(ROUTE_TYPES));

/** `ip route add` arguments as a template writes them: "default via 203.0.113.1 dev wan1 table 101". */
export function canonicalRouteFromText(text: string): CanonicalRoute {
  const r: Reader = new Reader('ip route');
  if (/[\u0000-\u001f\u007f]/.test(text)) r.fail('control character in route', text);
  const args = text.trim().split(/ +/).filter((a) => a !== '');
  const f: RouteFields = { dst: '', onlink: false, metrics: [], nexthops: [] };
  let table = MAIN_TABLE;
  let hop: Nexthop | null = null;
  for (let i = 0; i < args.length; i++) {
    const key = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) r.fail(`${key} needs a value`);
      return v;
    };
    if (hop) {
      // Inside a nexthop: only its own keywords, until the next "nexthop".
      if (key === 'via') hop.via = r.ipv4(value(), 'via');
      else if (key === 'dev') hop.dev = r.iface(value(), 'dev');
      else if (key === 'weight') hop.weight = r.u32(value(), 'weight', 10);
      else if (key === 'onlink') hop.onlink = true;
      else if (key === 'nexthop') f.nexthops.push((hop = { weight: 1, onlink: false }));
      else r.fail(`unknown nexthop keyword ${excerptOf(key)}`);
      continue;
    }
    switch (key) {
      case 'to':
        f.dst = routeDestination(r, value());
        break;
      case 'via':
        f.via = r.ipv4(value(), 'via');
        break;
      case 'dev':
      case 'oif':
        f.dev = r.iface(value(), 'dev');
        break;
      case 'src':
        f.src = r.ipv4(value(), 'src');
        break;
      case 'metric':
      case 'preference':
      case 'priority':
        f.metric = r.u32(value(), 'metric', 10);
        break;
      case 'onlink':
        f.onlink = true;
        break;
      case 'table':
        table = r.table(value());
        break;
      case 'tos':
      case 'dsfield':
        f.tos = r.u32(value(), 'tos', 16);
        break;
      case 'proto':
      case 'protocol':
        r.protocol(value());
        break;
      case 'scope':
        r.word(value(), 'scope');
        break;
      case 'nexthop':
        f.nexthops.push((hop = { weight: 1, onlink: false }));
        break;
      default:
        if (METRIC_KEYS.test(key)) f.metrics.push(key, r.word(value(), key));
        else if (ROUTE_TYPE_WORDS.has(key) && f.dst === '' && f.type === undefined) f.type = key;
        else if (f.dst === '') f.dst = routeDestination(r, key);
        else r.fail(`unknown ip route keyword ${excerptOf(key)}`);
    }
  }
  if (f.dst === '') r.fail('route without a destination', text);
  return { table, route: routeText(f) };
}

/**
 * The routing tables lbprov owns from `ip -N -j route show table all`: one resource per
 * owned table that has routes, routes sorted. Other tables and non-IPv4 routes are skipped.
 */
export function parseIpRoutes(json: unknown, tables: ReadonlySet<number>): RouteTableResource[] {
  const reader: Reader = new Reader('ip -j route');
  const byTable = new Map<number, string[]>();
  for (const entry of jsonArray(json, 'ip -j route')) {
    if (!isRecord(entry)) throw new ParseError('ip -j route', 'route is not an object', undefined, excerptOf(safeString(entry)));
    if (typeof entry.dst === 'string' && entry.dst.includes(':')) continue;
    const table = entry.table === undefined ? MAIN_TABLE : reader.table(entry.table);
    if (!tables.has(table)) continue;
    const { route } = canonicalRouteFromJson(entry);
    byTable.set(table, [...(byTable.get(table) ?? []), route]);
  }
  return [...byTable.entries()]
    .sort(([a], [b]) => a - b)
    .map(([table, routes]) => ({ kind: 'route-table', id: `route-table:${table}`, family: 'ipv4', table, routes: routes.sort() }));
}

// ---------------------------------------------------------------------------
// ip addr

/**
 * Interfaces from `ip -j addr show`. `up` means administratively up with carrier
 * (flags UP and LOWER_UP). Invalid names and addresses are dropped with a warning.
 */
export function parseIpAddr(json: unknown, warnings: string[] = []): InterfaceFacts[] {
  const out: InterfaceFacts[] = [];
  const names = new Set<string>();
  for (const entry of jsonArray(json, 'ip -j addr')) {
    if (!isRecord(entry)) throw new ParseError('ip -j addr', 'interface is not an object', undefined, excerptOf(safeString(entry)));
    const name = entry.ifname;
    if (typeof name !== 'string' || !isInterfaceName(name)) {
      warnings.push(`ip addr: ignored an interface with an invalid name ${excerptOf(safeString(name))}`);
      continue;
    }
    if (names.has(name)) {
      warnings.push(`ip addr: interface ${name} listed twice; kept the first`);
      continue;
    }
    names.add(name);
    const flags = Array.isArray(entry.flags) ? entry.flags : [];
    const ipv4: string[] = [];
    const addrInfo = Array.isArray(entry.addr_info) ? entry.addr_info : [];
    for (const a of addrInfo) {
      if (!isRecord(a) || a.family !== 'inet') continue;
      const len = a.prefixlen;
      if (typeof a.local !== 'string' || !isIpv4(a.local) || typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > 32) {
        warnings.push(`ip addr: ignored an invalid IPv4 address on ${name}: ${excerptOf(safeString(a.local))}/${excerptOf(safeString(len))}`);
        continue;
      }
      ipv4.push(`${a.local}/${len}`);
    }
    out.push({ name, up: flags.includes('UP') && flags.includes('LOWER_UP'), ipv4 });
  }
  return out;
}

/**
 * `ip -j -batch` output: one JSON document per command, in order. Recent iproute2 prints each on
 * a line of its own, older releases pretty-print them over many lines: the documents are found by
 * their brackets, whatever the whitespace. Exactly `count` of them, or the output is not what was
 * asked for.
 */
export function splitJsonDocuments(text: string, count: number, what: string): string[] {
  if (text.length > MAX_JSON_CHARS) throw new ParseError(what, `output is too large (${text.length} characters)`);
  const documents: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '[' || c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === ']' || c === '}') {
      if (--depth === 0) documents.push(text.slice(start, i + 1));
      if (depth < 0) throw new ParseError(what, 'unbalanced brackets');
    } else if (depth === 0 && !/\s/.test(c)) {
      throw new ParseError(what, 'text outside the JSON documents', undefined, excerptOf(text.slice(i, i + 40)));
    }
  }
  if (depth !== 0 || inString) throw new ParseError(what, 'the last JSON document is cut short');
  if (documents.length !== count) throw new ParseError(what, `expected ${count} JSON documents, got ${documents.length}`);
  return documents;
}

/**
 * Interfaces from `ip -j link show` (every interface, its flags) with the IPv4 addresses of
 * `ip -j -4 addr show` (which lists only interfaces that have one).
 */
export function parseInterfaces(linkJson: unknown, addrJson: unknown, warnings: string[] = []): InterfaceFacts[] {
  const links = parseIpAddr(linkJson, warnings);
  // The same names come again: report what only the address list says.
  const addrWarnings: string[] = [];
  const addresses = new Map(parseIpAddr(addrJson, addrWarnings).map((i) => [i.name, i.ipv4]));
  warnings.push(...addrWarnings.filter((w) => !warnings.includes(w)));
  return links.map((link) => ({ ...link, ipv4: addresses.get(link.name) ?? [] }));
}
