/**
 * lbprov's nftables table as text: what `nft -s list table ip lbprov` prints, and what a template
 * renders, read into chains of canonical lines. Templates write rules in the form nft 1.0.6 prints
 * them back (view.ts computes the constants nft folds, like `& 0x1fffffff | 0x10000000`), so the
 * two compare as plain strings; this reader only evens out what layout may differ (indentation,
 * blank lines, spaces between words).
 */
import { ParseError, excerptOf } from '../../errors.js';
import type { IpFamily } from '../../model/resources.js';

export interface NftChainText {
  name: string;
  /** `type filter hook prerouting priority mangle - 1; policy accept;`, or '' for a regular chain. */
  header: string;
  rules: string[];
}

export interface NftSetText {
  name: string;
  /** Declaration lines without the elements: `type ipv4_addr`, `size 65535`, `flags dynamic,timeout`, `timeout 10m`. */
  declaration: string[];
}

export interface NftTableText {
  family: IpFamily;
  name: string;
  sets: NftSetText[];
  chains: NftChainText[];
}

/** nft's family word for lbprov's address families. */
export function nftFamily(family: IpFamily): string {
  return family === 'ipv4' ? 'ip' : 'ip6';
}

export const NFT_CHAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
export const NFT_SET_NAME = NFT_CHAIN_NAME;
/** The declaration lines lbprov's sets have (a set of addresses that the kernel fills, with a timeout). */
export const NFT_SET_LINE = /^(type ipv4_addr|size \d{1,7}|flags [a-z]+(,[a-z]+)*|timeout (\d+d)?(\d+h)?(\d+m)?(\d+s)?)$/;
export const NFT_BASE_CHAIN = /^type (filter|nat|route) hook (prerouting|input|forward|output|postrouting) priority [a-z0-9 +-]{1,24}; policy (accept|drop);$/;
// Anything but tab is refused: a newline smuggled into a value must never become a second rule.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** One line with runs of blanks outside double quotes folded to one space. */
function foldBlanks(line: string): string {
  let out = '';
  let quoted = false;
  let blank = false;
  for (const ch of line.trim()) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === ' ' || ch === '\t')) {
      blank = true;
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += ch;
  }
  return out;
}

/**
 * `table <family> <name> { set <name> { ... } chain <name> { ... } ... }` in nft's listing layout:
 * one statement a line. Empty text is no table (the facts say so when the table does not exist).
 */
export function parseNftTable(text: string, what: string): NftTableText | null {
  const fail = (problem: string, n?: number, line?: string): never => {
    throw new ParseError(what, problem, n, line === undefined ? undefined : excerptOf(line));
  };
  let table: NftTableText | null = null;
  let chain: NftChainText | null = null;
  let set: NftSetText | null = null;
  // Inside a set's `elements = { ... }` (printed over several lines when long): run-time state, skipped.
  let inElements = false;
  let closed = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const raw = lines[i]!;
    if (CONTROL.test(raw.replace(/\t/g, ' '))) fail('control character in line', n, raw);
    const line = foldBlanks(raw);
    if (line === '' || line.startsWith('#')) continue;
    if (closed) fail('text after the end of the table', n, line);
    if (!table) {
      const m = /^table ip ([A-Za-z0-9_-]{1,64}) \{$/.exec(line) ?? fail('expected "table ip NAME {" (lbprov reads its IPv4 table)', n, line);
      table = { family: 'ipv4', name: m[1]!, sets: [], chains: [] };
    } else if (set) {
      if (inElements) inElements = !line.endsWith('}');
      else if (line.startsWith('elements = {')) inElements = !line.endsWith('}');
      else if (line === '}') {
        table.sets.push(set);
        set = null;
      } else if (NFT_SET_LINE.test(line)) set.declaration.push(line);
      else fail('a set declaration lbprov does not write', n, line);
    } else if (!chain) {
      if (line === '}') {
        closed = true;
        continue;
      }
      const setName = /^set (\S+) \{$/.exec(line)?.[1];
      if (setName !== undefined) {
        if (!NFT_SET_NAME.test(setName)) fail('set name lbprov would not use', n, line);
        if (table.sets.some((x) => x.name === setName)) fail(`set ${setName} twice`, n, line);
        set = { name: setName, declaration: [] };
        continue;
      }
      const name = /^chain (\S+) \{$/.exec(line)?.[1] ?? fail('expected "chain NAME {", "set NAME {" or the end of the table', n, line);
      if (!NFT_CHAIN_NAME.test(name)) fail('chain name lbprov would not use', n, line);
      if (table.chains.some((c) => c.name === name)) fail(`chain ${name} twice`, n, line);
      chain = { name, header: '', rules: [] };
    } else if (line === '}') {
      table.chains.push(chain);
      chain = null;
    } else if (line.startsWith('type ')) {
      if (chain.header || chain.rules.length > 0) fail('a chain declaration after its rules', n, line);
      if (!NFT_BASE_CHAIN.test(line)) fail('a base chain declaration lbprov does not write', n, line);
      chain.header = line;
    } else {
      if (line.includes('{') && !line.includes('}')) fail('a set or map over several lines (lbprov writes each on one line)', n, line);
      chain.rules.push(line);
    }
  }
  if (table && !closed) fail('the table does not end (truncated)');
  return table;
}

/** The listing of one chain, as nft prints it inside its table. */
export function chainText(chain: NftChainText): string[] {
  return [`\tchain ${chain.name} {`, ...(chain.header ? [`\t\t${chain.header}`] : []), ...chain.rules.map((r) => `\t\t${r}`), '\t}'];
}

/** The listing of one set, as nft prints it inside its table. */
export function setText(set: NftSetText): string[] {
  return [`\tset ${set.name} {`, ...set.declaration.map((d) => `\t\t${d}`), '\t}'];
}

/** The whole table as nft prints it: sets, then chains in the order given. */
export function tableText(family: IpFamily, name: string, chains: readonly NftChainText[], sets: readonly NftSetText[] = []): string {
  const body = [...sets.map((x) => setText(x).join('\n')), ...chains.map((c) => chainText(c).join('\n'))].join('\n\n');
  return `table ${nftFamily(family)} ${name} {\n${body}${body ? '\n' : ''}}\n`;
}
