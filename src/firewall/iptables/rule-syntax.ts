/**
 * The syntax of one iptables rule as iptables-restore 1.8.9 reads it: tokens, quoting, and the
 * structure (generic options, matches, target) that canonical.ts puts in canonical order.
 */
import { ParseError, excerptOf } from '../../errors.js';

// Anything but tab is refused: a newline or NUL smuggled into a value must never become a second rule.
export const CONTROL_CHARS = /[\u0000-\u0008\u000a-\u001f\u007f]/;

// ---------------------------------------------------------------------------
// Tokenising: the quoting rules of iptables-restore 1.8.9 (add_param_to_argv):
// double quotes group, a backslash escapes only inside quotes, single quotes are plain.

export function tokenize(text: string): string[] {
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
export function quoteSaveString(value: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(value)) return value;
  return `"${value.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/** Other arguments are printed bare; quote only what would not survive tokenising. */
export function quoteArgument(value: string): string {
  return value === '' || /[\s"\\']/.test(value) ? quoteSaveString(value) : value;
}

// Options whose values iptables-save prints with xtables_save_string.
export const STRING_OPTIONS = new Set(['--comment', '--log-prefix', '--nflog-prefix', '--string', '--hex-string', '--u32']);

// ---------------------------------------------------------------------------
// Rule structure

export interface OptionArg {
  negated: boolean;
  /** Long option as written ("--mark"); canonical names are applied per extension. */
  name: string;
  values: string[];
}

export interface Extension {
  name: string;
  options: OptionArg[];
}

export interface Rule {
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

export function parseRule(text: string): Rule {
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

export function canonicalProtocol(value: string): string {
  const lower = value.toLowerCase();
  return PROTOCOL_NAMES[lower] ?? (lower === '0' ? 'all' : lower);
}

