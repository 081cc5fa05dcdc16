/**
 * `ip rule`: the rules at lbprov's priorities from `ip -N -j rule show`, and `ip rule add`
 * argument text from templates, both into one canonical selector text that is itself valid
 * `ip rule` syntax (so apply can pass it back to `ip rule del`). A bad value in a rule lbprov
 * owns throws ParseError: guessing could make the diff delete or keep the wrong thing.
 */
import type { IpFamily, RoutingRuleResource } from '../model/resources.js';
import { duplicateId, resourceId } from '../model/resources.js';
import { ParseError, excerptOf } from '../errors.js';
import { hex, IP_PROTOCOLS, isRecord, jsonArray, MAIN_TABLE, Reader, ROUTE_TYPES, RULE_ACTIONS, safeString } from './reader.js';

export interface CanonicalIpRule {
  priority: number;
  /** `ip rule` text after the priority: "from all fwmark 0x10000000/0xf0000000 lookup 101". */
  selector: string;
}

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
 * Several rules at one priority get ids "<family>/ip-rule:P", "...#2", ...
 */
export function parseIpRules(json: unknown, family: IpFamily, first: number, last: number, warnings: string[] = []): RoutingRuleResource[] {
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
    out.push(ipRuleResource(family, priority, selector, count));
  }
  return out;
}

export function ipRuleResource(family: IpFamily, priority: number, selector: string, count = 1): RoutingRuleResource {
  return { kind: 'ip-rule', id: duplicateId(resourceId('ip-rule', String(priority), family), count), family, priority, selector };
}
