/**
 * canonicalizeRule: one iptables rule in the form iptables-save prints it. `iptables-save` does
 * not print what `iptables-restore` was given: it reorders the generic options, adds implicit
 * matches, rewrites marks as hex `--set-xmark`, adds default masks, drops `-p all`, adds `/32` ...
 * (measured forms: test/fixtures/iptables).
 */
import { ParseError, excerptOf } from '../../errors.js';
import { ipv4ToNumber, isIpv4 } from '../../model/net.js';
import { canonicalProtocol, parseRule, quoteArgument, quoteSaveString, STRING_OPTIONS, type Extension, type OptionArg } from './rule-syntax.js';

// ---------------------------------------------------------------------------
// Numbers and addresses

/** strtoul(…, 0) as iptables uses it: 0x hex, leading 0 octal, else decimal; 32 bits. */
function parseU32(text: string): number {
  let value: number;
  if (/^0x[0-9a-f]+$/i.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = parseInt(text, 10);
  else throw new ParseError('iptables rule', `not a number: ${excerptOf(text)}`);
  if (!Number.isSafeInteger(value) || value > 0xffffffff) throw new ParseError('iptables rule', `number out of range: ${text}`);
  return value;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

function parseValueMask(text: string): { value: number; mask: number | null } {
  const [value, mask, extra] = text.split('/');
  if (extra !== undefined || value === undefined) throw new ParseError('iptables rule', `bad value/mask ${excerptOf(text)}`);
  return { value: parseU32(value), mask: mask === undefined ? null : parseU32(mask) };
}

function checkedIpv4ToNumber(text: string): number {
  if (!isIpv4(text)) throw new ParseError('iptables rule', `not an IPv4 address: ${excerptOf(text)}`);
  return ipv4ToNumber(text);
}

function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 0xff).join('.');
}

/** "a.b.c.d[/len|/mask]" as iptables-save prints it: network/len, or addr/mask when not contiguous; null for 0.0.0.0/0. */
function canonicalAddress(text: string): string | null {
  if (text.includes(',')) {
    throw new ParseError('iptables rule', `address list ${excerptOf(text)} becomes several rules; write one rule per address`);
  }
  const [addr, maskText, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) throw new ParseError('iptables rule', `bad address ${excerptOf(text)}`);
  let mask: number;
  if (maskText === undefined) mask = 0xffffffff;
  else if (/^\d{1,2}$/.test(maskText) && Number(maskText) <= 32) {
    const len = Number(maskText);
    mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  } else mask = checkedIpv4ToNumber(maskText);
  const network = (checkedIpv4ToNumber(addr) & mask) >>> 0;
  if (mask === 0) return null;
  const inverted = ~mask >>> 0;
  if ((inverted & (inverted + 1)) !== 0) return `${numberToIpv4(network)}/${numberToIpv4(mask)}`;
  const len = 32 - Math.log2(inverted + 1);
  return `${numberToIpv4(network)}/${len}`;
}

const INTERFACE = /^[^\s/:"'\\]{1,15}$/;

// ---------------------------------------------------------------------------
// Per-extension canonical forms (each measured against iptables-save 1.8.9, both backends)

// iptables prints ICMP types by number (type only when every code matches).
const ICMP_TYPES: Record<string, string> = {
  'echo-reply': '0', pong: '0', 'destination-unreachable': '3', 'source-quench': '4', redirect: '5',
  'echo-request': '8', ping: '8', 'time-exceeded': '11', 'parameter-problem': '12',
  'timestamp-request': '13', 'timestamp-reply': '14',
};

const CONNTRACK_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];

function orderedList(text: string, order: string[]): string {
  const items = text.split(',').map((s) => s.toUpperCase());
  if (items.some((s) => !order.includes(s))) return text;
  return order.filter((s) => items.includes(s)).join(',');
}

function tcpFlagList(text: string): string {
  const upper = text.toUpperCase();
  if (upper === 'ALL') return TCP_FLAGS.join(',');
  if (upper === 'NONE') return 'NONE';
  return orderedList(text, TCP_FLAGS);
}

function sortOptions(options: OptionArg[], order: string[]): OptionArg[] {
  const rank = (o: OptionArg) => {
    const r = order.indexOf(o.name);
    return r === -1 ? order.length : r;
  };
  return options
    .map((o, index) => ({ o, index }))
    .sort((a, b) => rank(a.o) - rank(b.o) || a.index - b.index)
    .map(({ o }) => o);
}

function canonicalMatch(match: Extension): Extension {
  const options = match.options.map((o) => ({ ...o, values: [...o.values] }));
  switch (match.name) {
    case 'mark':
    case 'connmark':
      for (const o of options) {
        if (o.name === '--mark' && o.values.length === 1) {
          const { value, mask } = parseValueMask(o.values[0]!);
          o.values = [mask === null || mask === 0xffffffff ? hex(value) : `${hex(value)}/${hex(mask)}`];
        }
      }
      return { name: match.name, options };
    case 'conntrack':
      for (const o of options) if (o.name === '--ctstate' && o.values.length === 1) o.values = [orderedList(o.values[0]!, CONNTRACK_STATES)];
      return { name: match.name, options };
    case 'state':
      for (const o of options) if (o.name === '--state' && o.values.length === 1) o.values = [orderedList(o.values[0]!, CONNTRACK_STATES)];
      return { name: match.name, options };
    case 'statistic':
      for (const o of options) {
        if (o.name === '--probability' && o.values.length === 1 && /^(\d+\.?\d*|\.\d+)$/.test(o.values[0]!)) {
          o.values = [Number(o.values[0]).toFixed(11)];
        }
      }
      return { name: match.name, options: sortOptions(options, ['--mode', '--probability', '--every', '--packet']) };
    case 'tcp':
    case 'udp':
      for (const o of options) {
        if (o.name === '--source-port') o.name = '--sport';
        if (o.name === '--destination-port') o.name = '--dport';
        if (o.name === '--syn') {
          o.name = '--tcp-flags';
          o.values = ['FIN,SYN,RST,ACK', 'SYN'];
        }
        if (o.name === '--tcp-flags' && o.values.length === 2) o.values = o.values.map(tcpFlagList);
      }
      return { name: match.name, options: sortOptions(options, ['--sport', '--dport', '--tcp-option', '--tcp-flags']) };
    case 'icmp':
      for (const o of options) if (o.name === '--icmp-type' && o.values.length === 1) o.values = [ICMP_TYPES[o.values[0]!] ?? o.values[0]!];
      return { name: match.name, options };
    case 'dscp':
      for (const o of options) if (o.name === '--dscp' && o.values.length === 1) o.values = [`0x${parseU32(o.values[0]!).toString(16).padStart(2, '0')}`];
      return { name: match.name, options };
    default:
      return { name: match.name, options };
  }
}

function xmark(value: number, mask: number): OptionArg {
  return { negated: false, name: '--set-xmark', values: [`${hex(value)}/${hex(mask)}`] };
}

/** MARK and CONNMARK's --set-mark/--and-mark/--or-mark/--xor-mark all come back as --set-xmark. */
function markOption(o: OptionArg): OptionArg | null {
  const arg = o.values[0];
  if (o.values.length !== 1 || arg === undefined) return null;
  switch (o.name) {
    case '--set-mark':
    case '--set-xmark': {
      const { value, mask } = parseValueMask(arg);
      return xmark(value, mask ?? 0xffffffff);
    }
    case '--and-mark':
      return xmark(0, ~parseU32(arg) >>> 0);
    case '--or-mark': {
      const bits = parseU32(arg);
      return xmark(bits, bits);
    }
    case '--xor-mark':
      return xmark(parseU32(arg), 0);
    default:
      return null;
  }
}

function canonicalTarget(target: Extension & { goto: boolean }): Extension & { goto: boolean } {
  const options = target.options.map((o) => ({ ...o, values: [...o.values] }));
  switch (target.name) {
    case 'MARK':
      return { ...target, options: options.map((o) => markOption(o) ?? o) };
    case 'CONNMARK': {
      const mode = options.find((o) => o.name === '--restore-mark' || o.name === '--save-mark');
      if (!mode) return { ...target, options: options.map((o) => markOption(o) ?? o) };
      const one = (name: string) => options.find((o) => o.name === name)?.values[0];
      const both = one('--mask');
      const nfmask = hex(parseU32(one('--nfmask') ?? both ?? '0xffffffff'));
      const ctmask = hex(parseU32(one('--ctmask') ?? both ?? '0xffffffff'));
      const rest = options.filter((o) => !['--restore-mark', '--save-mark', '--mask', '--nfmask', '--ctmask'].includes(o.name));
      return {
        ...target,
        options: [
          { negated: false, name: mode.name, values: [] },
          { negated: false, name: '--nfmask', values: [nfmask] },
          { negated: false, name: '--ctmask', values: [ctmask] },
          ...rest,
        ],
      };
    }
    case 'SNAT':
    case 'DNAT':
      for (const o of options) if (o.name === '--to') o.name = target.name === 'SNAT' ? '--to-source' : '--to-destination';
      return { ...target, options };
    case 'DSCP':
      for (const o of options) if (o.name === '--set-dscp' && o.values.length === 1) o.values = [`0x${parseU32(o.values[0]!).toString(16).padStart(2, '0')}`];
      return { ...target, options };
    case 'TOS':
      for (const o of options) {
        if (o.name === '--set-tos' && o.values.length === 1 && /^(0x[0-9a-f]+|\d+)(\/(0x[0-9a-f]+|\d+))?$/i.test(o.values[0]!)) {
          const { value, mask } = parseValueMask(o.values[0]!);
          o.values = [`${hex(value)}/${hex(mask ?? 0xff)}`];
        }
      }
      return { ...target, options };
    default:
      return { ...target, options };
  }
}

function emitOptions(out: string[], options: OptionArg[]): void {
  for (const o of options) {
    if (o.negated) out.push('!');
    out.push(o.name);
    for (const v of o.values) out.push(STRING_OPTIONS.has(o.name) ? quoteSaveString(v) : quoteArgument(v));
  }
}

/**
 * The text iptables-save prints for a rule (the part after "-A CHAIN "), from any way
 * of writing it that iptables-restore accepts for the rules lbprov renders: generic
 * options first in save order, implicit protocol matches, hex marks with masks, /32
 * addresses, canonical quoting. Throws ParseError for text that is not one rule.
 */
export function canonicalizeRule(ruleText: string): string {
  const rule = parseRule(ruleText);
  const out: string[] = [];
  const generic = (flag: string, part: { negated: boolean; value: string } | undefined, value: string | null) => {
    if (!part || value === null) return;
    if (part.negated) out.push('!');
    out.push(flag, quoteArgument(value));
  };
  const address = (part: { negated: boolean; value: string } | undefined) => {
    if (!part) return null;
    const canonical = canonicalAddress(part.value);
    return canonical ?? (part.negated ? '0.0.0.0/0' : null);
  };
  const iface = (part: { negated: boolean; value: string } | undefined) => {
    if (!part) return null;
    if (!INTERFACE.test(part.value)) throw new ParseError('iptables rule', `bad interface name ${excerptOf(part.value)}`);
    return part.value;
  };
  generic('-s', rule.source, address(rule.source));
  generic('-d', rule.destination, address(rule.destination));
  generic('-i', rule.inInterface, iface(rule.inInterface));
  generic('-o', rule.outInterface, iface(rule.outInterface));
  if (rule.protocol) {
    const proto = canonicalProtocol(rule.protocol.value);
    generic('-p', rule.protocol, proto === 'all' && !rule.protocol.negated ? null : proto);
  }
  if (rule.fragment) out.push(...(rule.fragment.negated ? ['!', '-f'] : ['-f']));
  for (const match of rule.matches) {
    const m = canonicalMatch(match);
    out.push('-m', quoteArgument(m.name));
    emitOptions(out, m.options);
  }
  if (rule.target) {
    const t = canonicalTarget(rule.target);
    out.push(t.goto ? '-g' : '-j', quoteArgument(t.name));
    emitOptions(out, t.options);
  }
  return out.join(' ');
}

