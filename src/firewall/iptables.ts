/**
 * The iptables backend: lbprov's LBPROV_* chains and the jumps into them, read
 * with iptables-save and changed with one iptables-restore --noflush payload
 * per table (works on both the nf_tables and the legacy iptables).
 */
import type { ResourceChange } from '../model/plan.js';
import type { ChainResource, FirewallTable, IpFamily, JumpResource, Resource } from '../model/resources.js';
import { InputError } from '../errors.js';
import { canonicalizeRule, ownedFirewallResources, parseIptablesSave } from '../facts/iptables-save.js';
import { pipeInto, sign, type ApplyStep, type ChangePair } from '../apply/shell.js';
import type { FirewallBackend } from './backend.js';
import { meaningfulLines } from '../render/lines.js';

const TABLES: readonly FirewallTable[] = ['mangle', 'nat'];
const OWNED_CHAIN = /^LBPROV_[A-Z0-9_]{1,20}$/;
const BUILTIN_CHAINS: Record<FirewallTable, string[]> = {
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};
const RESTORE = 'iptables-restore -w 10 --noflush';

function isTable(table: string): table is FirewallTable {
  return (TABLES as readonly string[]).includes(table);
}

export const iptablesBackend: FirewallBackend = {
  name: 'iptables',
  kinds: ['chain', 'jump'],

  factsSections(family: IpFamily) {
    // Every table in one iptables-save: one process and one ruleset dump instead of one per table.
    // IPv6 will read ip6tables-save into a section of its own.
    return family === 'ipv4' ? ([['iptables', 'iptables-save']] as const) : [];
  },

  ownedResources(read, family, warnings) {
    const parsed = parseIptablesSave(read('iptables', 'iptables-save'));
    const fw = ownedFirewallResources(parsed, family);
    warnings.push(...parsed.warnings, ...fw.warnings);
    for (const ref of fw.foreignReferences) warnings.push(`foreign rule jumps into an lbprov chain: -A ${ref.chain} ${ref.rule} (${ref.table})`);
    return [...fw.chains, ...fw.jumps];
  },

  resourcesFromTemplate(table, text, family, at) {
    if (!isTable(table)) throw new InputError(at(1), 'iptables', `lbprov manages the mangle and nat tables, not ${table}`);
    return iptablesFragment(table, text, family, at);
  },

  applySteps(pairs) {
    const steps: ApplyStep[] = [];
    for (const table of TABLES) {
      const inTable = pairs.filter((p) => tableOf(p.forward) === table);
      if (inTable.length === 0) continue;
      steps.push({
        description: `iptables ${table}: ${inTable.map((p) => `${sign(p.forward)}${p.forward.id.split(':').slice(2).join(':')}`).join(' ')}`,
        command: pipeInto(firewallPayload(table, inTable.map((p) => p.forward)), RESTORE),
        undo: pipeInto(firewallPayload(table, inTable.map((p) => p.backward)), RESTORE),
      });
    }
    return steps;
  },
};

function tableOf(c: ResourceChange): string {
  return ((c.after ?? c.before) as ChainResource | JumpResource).table;
}

/**
 * One iptables-restore --noflush payload: `:CHAIN` re-declares (and so flushes)
 * exactly the chains that change; built-in chains are never declared, so
 * foreign rules in them are untouched.
 */
export function firewallPayload(table: string, changes: readonly ResourceChange[]): string {
  const lines = [`*${table}`];
  const chains = changes.filter((c) => c.kind === 'chain');
  const jumps = changes.filter((c) => c.kind === 'jump');
  for (const c of chains) if (c.after) lines.push(`:${(c.after as ChainResource).chain} - [0:0]`);
  for (const c of chains) {
    const chain = c.after as ChainResource | null;
    if (chain) for (const rule of chain.rules) lines.push(`-A ${chain.chain} ${rule}`);
  }
  for (const c of jumps) {
    if (c.before) lines.push(`-D ${(c.before as JumpResource).chain} ${(c.before as JumpResource).rule}`);
    if (c.after) lines.push(`-I ${(c.after as JumpResource).chain} 1 ${(c.after as JumpResource).rule}`);
  }
  // Every removed chain is emptied before any is deleted: one may still jump to another.
  const removed = chains.filter((c) => !c.after).map((c) => (c.before as ChainResource).chain);
  for (const name of removed) lines.push(`-F ${name}`);
  for (const name of removed) lines.push(`-X ${name}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** An iptables-save fragment: `:LBPROV_X` declarations, jumps from built-in chains, rules of LBPROV chains. */
function iptablesFragment(table: FirewallTable, text: string, family: IpFamily, at: (n: number) => string): Resource[] {
  const chains = new Map<string, string[]>();
  const jumps: Resource[] = [];
  for (const { line, n } of meaningfulLines(text)) {
    if (line === `*${table}` || line === 'COMMIT') continue;
    const decl = /^:(\S+)\s+-\s+\[0:0\]$/.exec(line);
    if (decl) {
      if (!OWNED_CHAIN.test(decl[1]!)) throw new InputError(at(n), 'iptables', `chain ${decl[1]} is not an lbprov chain (LBPROV_*)`);
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
    if (OWNED_CHAIN.test(chain)) {
      const rules = chains.get(chain);
      if (!rules) throw new InputError(at(n), 'iptables', `chain ${chain} is used before its ":${chain} - [0:0]" declaration`);
      rules.push(body);
    } else if (BUILTIN_CHAINS[table].includes(chain)) {
      const target = /^-j (LBPROV_[A-Z0-9_]+)$/.exec(body);
      if (!target) throw new InputError(at(n), 'iptables', `rules in built-in chain ${chain} may only jump to an lbprov chain`);
      jumps.push({ kind: 'jump', id: `jump:${table}:${chain}:${target[1]}`, family, table, chain, rule: body });
    } else {
      throw new InputError(at(n), 'iptables', `chain ${chain} is neither built in nor an lbprov chain`);
    }
  }
  const chainResources: Resource[] = [...chains].map(([chain, rules]) => ({ kind: 'chain', id: `chain:${table}:${chain}`, family, table, chain, rules }));
  return [...chainResources, ...jumps];
}
