/**
 * What lbprov owns in a parsed iptables-save: its LBPROV_* chains and the jumps into them from
 * built-in chains of the mangle and nat tables; foreign rules that still refer to its chains
 * are reported (they block deleting those chains).
 */
import type { IpFamily, IptablesChainResource, IptablesJumpResource, IptablesTableName } from '../../model/resources.js';
import { duplicateId, resourceId } from '../../model/resources.js';
import { IPTABLES_CHAIN_PREFIX } from '../../model/ownership.js';
import type { IptablesSave } from './save.js';


const OWNED_TABLES: readonly IptablesTableName[] = ['mangle', 'nat'];

function ownedTable(name: string): IptablesTableName | undefined {
  return OWNED_TABLES.find((t) => t === name);
}

/** A rule outside lbprov's chains and jumps that still refers to an lbprov chain (it blocks deleting that chain). */
export interface ForeignReference {
  table: string;
  chain: string;
  rule: string;
}

export interface OwnedIptables {
  chains: IptablesChainResource[];
  jumps: IptablesJumpResource[];
  foreignReferences: ForeignReference[];
  warnings: string[];
}

function targetOf(rule: string): { goto: boolean; name: string } | null {
  // A quoted value (a comment) may spell "-j LBPROV_X" without being a jump.
  const m = /(?:^| )-([jg]) (\S+)/.exec(rule.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
  return m ? { goto: m[1] === 'g', name: m[2]! } : null;
}

export function iptablesChainResource(family: IpFamily, table: IptablesTableName, chain: string, rules: readonly string[]): IptablesChainResource {
  return { kind: 'iptables-chain', id: resourceId('iptables-chain', `${table}:${chain}`, family), family, table, chain, rules: [...rules] };
}

export function iptablesJumpResource(family: IpFamily, table: IptablesTableName, chain: string, target: string, rule: string, count = 1): IptablesJumpResource {
  return { kind: 'iptables-jump', id: duplicateId(resourceId('iptables-jump', `${table}:${chain}:${target}`, family), count), family, table, chain, rule };
}

/**
 * lbprov's chains (LBPROV_*) and jump rules (rules in built-in chains whose -j target is
 * an LBPROV_* chain) in the mangle and nat tables. A jump that appears more than once
 * gets ids with "#2", "#3", ... so a diff sees (and removes) the duplicates.
 */
export function ownedIptablesResources(parsed: IptablesSave, family: IpFamily): OwnedIptables {
  const chains: IptablesChainResource[] = [];
  const jumps: IptablesJumpResource[] = [];
  const foreignReferences: ForeignReference[] = [];
  const warnings: string[] = [];
  for (const [tableName, table] of parsed.tables) {
    const owned = ownedTable(tableName);
    for (const chain of table.chains) {
      if (chain.name.startsWith(IPTABLES_CHAIN_PREFIX) && !chain.builtin) {
        if (!owned) {
          warnings.push(`chain ${chain.name} in table ${tableName} looks like lbprov's but lbprov manages only mangle and nat`);
          continue;
        }
        chains.push(iptablesChainResource(family, owned, chain.name, chain.rules));
        continue;
      }
      const seen = new Map<string, number>();
      for (const rule of chain.rules) {
        const target = targetOf(rule);
        if (!target?.name.startsWith(IPTABLES_CHAIN_PREFIX)) continue;
        if (!owned || !chain.builtin || target.goto) {
          foreignReferences.push({ table: tableName, chain: chain.name, rule });
          continue;
        }
        const key = `${chain.name}:${target.name}`;
        const count = (seen.get(key) ?? 0) + 1;
        seen.set(key, count);
        jumps.push(iptablesJumpResource(family, owned, chain.name, target.name, rule, count));
      }
    }
  }
  // Declaration order differs between a rendered file and save output (which sorts user chains).
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return { chains: chains.sort(byId), jumps: jumps.sort(byId), foreignReferences, warnings };
}
