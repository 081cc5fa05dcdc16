/** An iptables-save fragment from a template: `:LBPROV_X` declarations, jumps from built-in chains, rules of LBPROV chains. */
import { InputError } from '../../errors.js';
import { IPTABLES_OWNED_CHAIN } from '../../model/ownership.js';
import type { IpFamily, IptablesTableName, Resource } from '../../model/resources.js';
import { meaningfulLines } from '../../model/text.js';
import type { FirewallTemplate } from '../backend.js';
import { canonicalizeRule } from './canonical.js';
import { iptablesChainResource, iptablesJumpResource } from './owned.js';

export const IPTABLES_TABLES: readonly IptablesTableName[] = ['mangle', 'nat'];

export const BUILTIN_CHAINS: Record<IptablesTableName, readonly string[]> = {
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};

function tableOf(name: string | undefined): IptablesTableName | undefined {
  return IPTABLES_TABLES.find((t) => t === name);
}

export function iptablesFromTemplate({ table: tableName, text, family, at }: FirewallTemplate): Resource[] {
  const table = tableOf(tableName);
  if (!table) throw new InputError(at(1), 'iptables', `lbprov manages the mangle and nat tables, not ${tableName ?? '(none given)'}`);
  return fragmentResources(table, text, family, at);
}

function fragmentResources(table: IptablesTableName, text: string, family: IpFamily, at: (n: number) => string): Resource[] {
  const chains = new Map<string, string[]>();
  const jumps: Resource[] = [];
  for (const { line, n } of meaningfulLines(text)) {
    if (line === `*${table}` || line === 'COMMIT') continue;
    const decl = /^:(\S+)\s+-\s+\[0:0\]$/.exec(line);
    if (decl) {
      if (!IPTABLES_OWNED_CHAIN.test(decl[1]!)) throw new InputError(at(n), 'iptables', `chain ${decl[1]} is not an lbprov chain (LBPROV_*)`);
      chains.set(decl[1]!, chains.get(decl[1]!) ?? []);
      continue;
    }
    const rule = /^-A\s+(\S+)\s+(.+)$/.exec(line);
    if (!rule) throw new InputError(at(n), 'iptables', `expected ":CHAIN - [0:0]", "-A CHAIN ..." or COMMIT, got ${JSON.stringify(line)}`);
    const chain = rule[1]!;
    let body: string;
    try {
      body = canonicalizeRule(rule[2]!);
    } catch (e) {
      throw new InputError(at(n), 'iptables', (e as Error).message);
    }
    if (IPTABLES_OWNED_CHAIN.test(chain)) {
      const rules = chains.get(chain);
      if (!rules) throw new InputError(at(n), 'iptables', `chain ${chain} is used before its ":${chain} - [0:0]" declaration`);
      rules.push(body);
    } else if (BUILTIN_CHAINS[table].includes(chain)) {
      const target = /^-j (LBPROV_[A-Z0-9_]+)$/.exec(body);
      if (!target) throw new InputError(at(n), 'iptables', `rules in built-in chain ${chain} may only jump to an lbprov chain`);
      jumps.push(iptablesJumpResource(family, table, chain, target[1]!, body));
    } else {
      throw new InputError(at(n), 'iptables', `chain ${chain} is neither built in nor an lbprov chain`);
    }
  }
  return [...[...chains].map(([chain, rules]) => iptablesChainResource(family, table, chain, rules)), ...jumps];
}
