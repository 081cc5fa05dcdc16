/**
 * `iptables-save` output (nf_tables or legacy backend, with or without counters) -> tables,
 * chains and canonical rules. Every rule goes through canonicalizeRule, so a rendered rule and
 * the one the gateway prints compare equal as plain strings.
 */
import { ParseError, excerptOf } from '../../errors.js';
import { canonicalizeRule } from './canonical.js';
import { CONTROL_CHARS } from './rule-syntax.js';
import { IPTABLES_CHAIN_PREFIX } from '../../model/ownership.js';

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
      if (name.startsWith(IPTABLES_CHAIN_PREFIX)) throw new ParseError(what, err.problem, lineNo, excerptOf(line));
      chain.rules.push(ruleText.trim().replace(/\s+/g, ' '));
      warnings.push(`${what} line ${lineNo}: kept verbatim (${err.problem}): ${excerptOf(line)}`);
    }
  });
  const open = table as IptablesTable | null;
  if (open) throw new ParseError(what, `table ${open.name} (line ${tableLine}) has no COMMIT: output truncated`);
  return { tables, warnings };
}

