/**
 * Pure parsing and canonicalisation of iptables rules.
 *
 * `iptables-save` does not print what `iptables-restore` was given: it reorders the
 * generic options, adds implicit matches, rewrites marks as hex `--set-xmark`, adds
 * default masks, drops `-p all`, adds `/32` ... (measured forms: test/fixtures/iptables).
 * Both the rendered templates and the gateway's save output go through
 * canonicalizeRule, so equal rules compare equal as plain strings.
 */
import type { ChainResource, FirewallTable, IpFamily, JumpResource } from '../model/resources.js';
import { ipv4ToNumber, isIpv4 } from './iproute.js';
import { ParseError, excerptOf } from './parse-error.js';

export interface IptablesChain {
  name: string;
  /** Built-in chains have a policy (ACCEPT/DROP); user chains print "-". */
  builtin: boolean;
  /** Policy of a built-in chain; null for user chains and for undeclared built-ins. */
  policy: string | null;
  /** Rule text after "-A CHAIN ", canonical. */
  rules: string[];
}

export interface IptablesTable {
  name: string;
  chains: IptablesChain[];
}

export interface IptablesSave {
  tables: Map<string, IptablesTable>;
  /** Warnings printed into the output ("# Warning: iptables-legacy tables present", incompatible tables, rules kept verbatim). */
  warnings: string[];
}

/** lbprov's chains are named LBPROV_*. */
export const OWNED_PREFIX = 'LBPROV_';

const BUILTIN_CHAINS: Record<string, readonly string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

// xtables chain names are at most 28 characters; iptables-save never prints whitespace in them.
const CHAIN_NAME = /^[^\s!"'\\]{1,28}$/;
const TABLE_NAME = /^[a-z_]{1,32}$/;
// Anything but tab is refused: a newline or NUL smuggled into a value must never become a second rule.
const CONTROL_CHARS = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * Parses the output of iptables-save (nf_tables or legacy backend, with or without -c).
 * Throws ParseError on a garbage line (with its number) and on output that ends inside
 * a table (no COMMIT: truncated). Empty output is no tables.
 */
export function parseIptablesSave(text: string, what = 'iptables-save'): IptablesSave {
  const tables = new Map<string, IptablesTable>();
  const warnings: string[] = [];
  let table: IptablesTable | null = null;
  let chainsByName = new Map<string, IptablesChain>();
  let tableLine = 0;

  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    if (CONTROL_CHARS.test(raw)) throw new ParseError(what, 'control character in line', lineNo, excerptOf(raw));
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      if (/^#\s*(Warning|Table .* is incompatible)/i.test(line)) warnings.push(line.replace(/^#\s*/, ''));
      return;
    }
    if (line.startsWith('*')) {
      const name = line.slice(1);
      if (table) throw new ParseError(what, `table ${table.name} (line ${tableLine}) has no COMMIT before the next table`, lineNo);
      if (!TABLE_NAME.test(name)) throw new ParseError(what, 'bad table name', lineNo, excerptOf(line));
      if (tables.has(name)) throw new ParseError(what, `table ${name} appears twice`, lineNo);
      table = { name, chains: [] };
      chainsByName = new Map();
      tableLine = lineNo;
      return;
    }
    if (!table) throw new ParseError(what, 'line outside of a table', lineNo, excerptOf(line));
    if (line === 'COMMIT') {
      tables.set(table.name, table);
      table = null;
      return;
    }
    if (line.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)(?:\s+\[\d+:\d+\])?$/.exec(line);
      if (!m || !CHAIN_NAME.test(m[1]!) || !/^(-|[A-Z]+)$/.test(m[2]!)) {
        throw new ParseError(what, 'bad chain declaration', lineNo, excerptOf(line));
      }
      const name = m[1]!;
      if (chainsByName.has(name)) throw new ParseError(what, `chain ${name} declared twice`, lineNo);
      const chain: IptablesChain = { name, builtin: m[2] !== '-', policy: m[2] === '-' ? null : m[2]!, rules: [] };
      chainsByName.set(name, chain);
      table.chains.push(chain);
      return;
    }
    // `iptables-save -c` prefixes rules with [packets:bytes].
    const m = /^(?:\[\d+:\d+\]\s+)?-A\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) throw new ParseError(what, 'not a rule, chain, table or COMMIT line', lineNo, excerptOf(line));
    const name = m[1]!;
    let chain = chainsByName.get(name);
    if (!chain) {
      // Real save output declares every chain; a hand-written file may append to a built-in without declaring it.
      if (!BUILTIN_CHAINS[table.name]?.includes(name)) {
        throw new ParseError(what, `rule for undeclared chain ${name}`, lineNo, excerptOf(line));
      }
      chain = { name, builtin: true, policy: null, rules: [] };
      chainsByName.set(name, chain);
      table.chains.push(chain);
    }
    const ruleText = m[2] ?? '';
    try {
      chain.rules.push(canonicalizeRule(ruleText));
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
      // A foreign rule we cannot model must not stop the run: keep it verbatim and say so.
      if (name.startsWith(OWNED_PREFIX)) throw new ParseError(what, err.problem, lineNo, excerptOf(line));
      chain.rules.push(ruleText.trim().replace(/\s+/g, ' '));
      warnings.push(`${what} line ${lineNo}: kept verbatim (${err.problem}): ${excerptOf(line)}`);
    }
  });
  const open = table as IptablesTable | null;
  if (open) throw new ParseError(what, `table ${open.name} (line ${tableLine}) has no COMMIT: output truncated`);
  return { tables, warnings };
}

// ---------------------------------------------------------------------------
// Tokenising: the quoting rules of iptables-restore 1.8.9 (add_param_to_argv):
// double quotes group, a backslash escapes only inside quotes, single quotes are plain.

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let quoted = false;
  let escaped = false;
  for (const ch of text) {
    if (quoted) {
      if (escaped) {
        current += ch;
        escaped = false;
      } else if (ch === '\\') {
        escaped = true;
      } else if (ch === '"') {
        quoted = false;
        tokens.push(current);
        current = '';
        inToken = false;
      } else {
        current += ch;
      }
      continue;
    }
    if (ch === '"') {
      quoted = true;
      inToken = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
    } else {
      current += ch;
      inToken = true;
    }
  }
  if (quoted) throw new ParseError('iptables rule', 'unterminated double quote', undefined, excerptOf(text));
  if (inToken) tokens.push(current);
  return tokens;
}

/** Quotes like xtables_save_string: bare only when made of [A-Za-z0-9_-]. */
function quoteSaveString(value: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(value)) return value;
  return `"${value.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/** Other arguments are printed bare; quote only what would not survive tokenising. */
function quoteArgument(value: string): string {
  return value === '' || /[\s"\\']/.test(value) ? quoteSaveString(value) : value;
}

// Options whose values iptables-save prints with xtables_save_string.
const STRING_OPTIONS = new Set(['--comment', '--log-prefix', '--nflog-prefix', '--string', '--hex-string', '--u32']);

// ---------------------------------------------------------------------------
// Rule structure

interface OptionArg {
  negated: boolean;
  /** Long option as written ("--mark"); canonical names are applied per extension. */
  name: string;
  values: string[];
}

interface Extension {
  name: string;
  options: OptionArg[];
}

interface Rule {
  source?: { negated: boolean; value: string };
  destination?: { negated: boolean; value: string };
  inInterface?: { negated: boolean; value: string };
  outInterface?: { negated: boolean; value: string };
  protocol?: { negated: boolean; value: string };
  fragment?: { negated: boolean };
  matches: Extension[];
  target?: Extension & { goto: boolean };
}

const GENERIC_OPTIONS: Record<string, 'source' | 'destination' | 'inInterface' | 'outInterface' | 'protocol' | 'fragment'> = {
  '-s': 'source',
  '--source': 'source',
  '--src': 'source',
  '-d': 'destination',
  '--destination': 'destination',
  '--dst': 'destination',
  '-i': 'inInterface',
  '--in-interface': 'inInterface',
  '-o': 'outInterface',
  '--out-interface': 'outInterface',
  '-p': 'protocol',
  '--protocol': 'protocol',
  '-f': 'fragment',
  '--fragment': 'fragment',
};

// Commands and table selection have no place inside a rule: refusing them keeps a
// rendered value from turning one rule into another command.
const COMMAND_OPTIONS = new Set([
  '-A', '--append', '-I', '--insert', '-D', '--delete', '-R', '--replace', '-N', '--new-chain', '-X',
  '--delete-chain', '-F', '--flush', '-P', '--policy', '-Z', '--zero', '-E', '--rename-chain', '-L', '--list',
  '-S', '--list-rules', '-t', '--table', '-C', '--check',
]);

// Options of the protocol matches that iptables loads implicitly after `-p tcp|udp|icmp`,
// with their number of values.
const PROTOCOL_MATCH_OPTIONS: Record<string, Record<string, number>> = {
  tcp: { '--sport': 1, '--source-port': 1, '--dport': 1, '--destination-port': 1, '--tcp-flags': 2, '--syn': 0, '--tcp-option': 1 },
  udp: { '--sport': 1, '--source-port': 1, '--dport': 1, '--destination-port': 1 },
  icmp: { '--icmp-type': 1 },
};

// Options whose number of values is known; others take every following token up to the next option.
const OPTION_ARITY: Record<string, number> = {
  '--comment': 1, '--log-prefix': 1, '--nflog-prefix': 1, '--string': 1, '--hex-string': 1,
  '--mark': 1, '--set-mark': 1, '--set-xmark': 1, '--and-mark': 1, '--or-mark': 1, '--xor-mark': 1,
  '--restore-mark': 0, '--save-mark': 0, '--mask': 1, '--nfmask': 1, '--ctmask': 1,
  '--ctstate': 1, '--state': 1, '--mode': 1, '--every': 1, '--packet': 1, '--probability': 1,
  '--to': 1, '--to-source': 1, '--to-destination': 1, '--to-ports': 1,
};

const PROTOCOL_NAMES: Record<string, string> = {
  '1': 'icmp', '2': 'igmp', '4': 'ipencap', '6': 'tcp', '17': 'udp', '33': 'dccp', '41': 'ipv6', '47': 'gre',
  '50': 'esp', '51': 'ah', '58': 'ipv6-icmp', '132': 'sctp', '135': 'mobility-header', '136': 'udplite',
};

function parseRule(text: string): Rule {
  if (CONTROL_CHARS.test(text)) throw new ParseError('iptables rule', 'control character in rule', undefined, excerptOf(text));
  const tokens = tokenize(text);
  const rule: Rule = { matches: [] };
  const protocol = findProtocol(tokens);
  let context: Extension | null = null;
  let negated = false;
  let i = 0;
  const bad = (problem: string): never => {
    throw new ParseError('iptables rule', problem, undefined, excerptOf(text));
  };
  const next = (what: string): string => {
    const value = tokens[i++];
    if (value === undefined) bad(`${what} needs a value`);
    return value as string;
  };

  while (i < tokens.length) {
    const token = tokens[i++]!;
    if (token === '!') {
      if (negated) bad('double "!"');
      negated = true;
      continue;
    }
    if (COMMAND_OPTIONS.has(token)) bad(`command ${token} inside a rule`);
    const generic = GENERIC_OPTIONS[token];
    if (generic) {
      if (rule[generic]) bad(`${token} given twice`);
      if (generic === 'fragment') rule.fragment = { negated };
      else rule[generic] = { negated, value: next(token) };
      negated = false;
      continue;
    }
    if (token === '-m' || token === '--match') {
      if (negated) bad('"!" before -m');
      context = { name: next(token), options: [] };
      rule.matches.push(context);
      continue;
    }
    if (token === '-j' || token === '--jump' || token === '-g' || token === '--goto') {
      if (negated) bad(`"!" before ${token}`);
      if (rule.target) bad('two targets');
      const target = { name: next(token), options: [], goto: token === '-g' || token === '--goto' };
      rule.target = target;
      context = target;
      continue;
    }
    if (token === '-c' || token === '--set-counters') {
      next(token);
      next(token);
      continue;
    }
    if (!token.startsWith('--')) bad(`unexpected argument ${excerptOf(token)}`);

    const protocolArity = protocol ? PROTOCOL_MATCH_OPTIONS[protocol]?.[token] : undefined;
    let owner = context;
    if (protocolArity !== undefined && owner?.name !== protocol) {
      // iptables hands an option no loaded extension claims to the protocol's match, loading it if needed.
      owner = rule.matches.find((m) => m.name === protocol) ?? null;
      if (!owner) {
        owner = { name: protocol!, options: [] };
        rule.matches.push(owner);
      }
    }
    if (!owner) bad(`option ${token} outside of a match or target`);
    const arity = protocolArity ?? OPTION_ARITY[token];
    const values: string[] = [];
    if (arity !== undefined) {
      for (let k = 0; k < arity; k++) values.push(next(token));
    } else {
      while (i < tokens.length && !tokens[i]!.startsWith('-') && tokens[i] !== '!') values.push(tokens[i++]!);
    }
    owner!.options.push({ negated, name: token, values });
    negated = false;
  }
  if (negated) bad('dangling "!"');
  return rule;
}

function findProtocol(tokens: string[]): string | undefined {
  for (let i = 0; i < tokens.length - 1; i++) {
    if (tokens[i] === '-p' || tokens[i] === '--protocol') return canonicalProtocol(tokens[i + 1]!);
  }
  return undefined;
}

function canonicalProtocol(value: string): string {
  const lower = value.toLowerCase();
  return PROTOCOL_NAMES[lower] ?? (lower === '0' ? 'all' : lower);
}

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

// ---------------------------------------------------------------------------
// What lbprov owns

const OWNED_TABLES: readonly FirewallTable[] = ['mangle', 'nat'];

/** A rule outside lbprov's chains and jumps that still refers to an lbprov chain (it blocks deleting that chain). */
export interface ForeignReference {
  table: string;
  chain: string;
  rule: string;
}

export interface OwnedFirewall {
  chains: ChainResource[];
  jumps: JumpResource[];
  foreignReferences: ForeignReference[];
  warnings: string[];
}

function targetOf(rule: string): { goto: boolean; name: string } | null {
  const m = /(?:^| )-([jg]) (\S+)/.exec(rule);
  return m ? { goto: m[1] === 'g', name: m[2]! } : null;
}

/**
 * lbprov's chains (LBPROV_*) and jump rules (rules in built-in chains whose -j target is
 * an LBPROV_* chain) in the mangle and nat tables. A jump that appears more than once
 * gets ids with "#2", "#3", ... so a diff sees (and removes) the duplicates.
 */
export function ownedFirewallResources(parsed: IptablesSave, family: IpFamily = 'ipv4'): OwnedFirewall {
  const chains: ChainResource[] = [];
  const jumps: JumpResource[] = [];
  const foreignReferences: ForeignReference[] = [];
  const warnings: string[] = [];
  for (const [tableName, table] of parsed.tables) {
    const owned = (OWNED_TABLES as readonly string[]).includes(tableName);
    for (const chain of table.chains) {
      if (chain.name.startsWith(OWNED_PREFIX) && !chain.builtin) {
        if (!owned) {
          warnings.push(`chain ${chain.name} in table ${tableName} looks like lbprov's but lbprov manages only mangle and nat`);
          continue;
        }
        chains.push({
          kind: 'chain',
          id: `chain:${tableName}:${chain.name}`,
          family,
          table: tableName as FirewallTable,
          chain: chain.name,
          rules: [...chain.rules],
        });
        continue;
      }
      const seen = new Map<string, number>();
      for (const rule of chain.rules) {
        const target = targetOf(rule);
        if (!target?.name.startsWith(OWNED_PREFIX)) continue;
        if (!owned || !chain.builtin || target.goto) {
          foreignReferences.push({ table: tableName, chain: chain.name, rule });
          continue;
        }
        const baseId = `jump:${tableName}:${chain.name}:${target.name}`;
        const count = (seen.get(baseId) ?? 0) + 1;
        seen.set(baseId, count);
        jumps.push({
          kind: 'jump',
          id: count === 1 ? baseId : `${baseId}#${count}`,
          family,
          table: tableName as FirewallTable,
          chain: chain.name,
          rule,
        });
      }
    }
  }
  // Declaration order differs between a rendered file and save output (which sorts user chains).
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return { chains: chains.sort(byId), jumps: jumps.sort(byId), foreignReferences, warnings };
}
