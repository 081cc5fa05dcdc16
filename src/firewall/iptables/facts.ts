/**
 * The iptables sections of the facts script: lbprov's lines of every table from one iptables-save,
 * the tools, and the matches and targets the kernel has registered. IPv6 will read ip6tables-save
 * into sections of its own.
 */
import type { IptablesFacts } from '../../model/facts.js';
import type { IpFamily } from '../../model/resources.js';
import { parseKeyValues, type SectionReader } from '../../remote/sections.js';
import type { BackendFacts } from '../backend.js';
import { ownedIptablesResources } from './owned.js';
import { parseIptablesSave } from './save.js';

const TOOLS = [
  'v=$(iptables -V 2>/dev/null); echo "version=$v"',
  'command -v iptables-restore >/dev/null 2>&1 && echo restore=1',
  // The other variant's rules are invisible to this one: count them for a warning.
  'case "$v" in *nf_tables*) o=iptables-legacy-save;; *) o=iptables-nft-save;; esac',
  // Legacy tables show in ip_tables_names: without any there is nothing to count.
  'case "$o" in iptables-legacy-save) x=; read -r x 2>/dev/null < /proc/net/ip_tables_names || o=;; esac',
  'if [ -n "$o" ] && command -v "$o" >/dev/null 2>&1; then echo "other=$("$o" 2>/dev/null | grep -c "^-A")"; fi',
  // How many sources an xt_recent list holds (sticky sources): set when the module loads.
  'r=; read -r r 2>/dev/null < /sys/module/xt_recent/parameters/ip_list_tot; echo "recent_max=$r"',
].join('\n');

/**
 * The lines of a whole iptables-save that lbprov reads: table headers and COMMITs (so a dump cut
 * short still lacks its COMMIT), chain declarations, iptables-save's comments (its warnings), the
 * rules of LBPROV_* chains and every rule that jumps or goes to one. A 20,000-rule blocklist then
 * costs the gateway one awk pass instead of costing lbprov 20,000 rules to canonicalise.
 * One whole dump rather than `-t mangle` and `-t nat`: iptables-save takes one table per run, the
 * nf_tables one reads the ruleset either way, and the legacy one loads the module of a table it
 * is asked for (creating it). awk exits with iptables-save's status, which a pipe would lose.
 */
const OWNED_LINES = "{ iptables-save; echo \"#rc=$?\"; } | awk '/^#rc=/ { exit substr($0, 5) } /^([*:#]|COMMIT$|-A LBPROV_|-A .* -[jg] LBPROV_)/'";

export function iptablesFactsSections(family: IpFamily): [string, string][] {
  if (family !== 'ipv4') return [];
  return [
    ['iptables', OWNED_LINES],
    ['iptables-tools', TOOLS],
    ['ip-tables-matches', 'show /proc/net/ip_tables_matches'],
    ['ip-tables-targets', 'show /proc/net/ip_tables_targets'],
  ];
}

function names(read: SectionReader, section: string): string[] {
  const s = read.section(section);
  if (!s || s.rc !== 0) return [];
  return s.body.split('\n').map((l) => l.trim()).filter((x) => /^[A-Za-z0-9_-]{1,64}$/.test(x));
}

export function parseIptablesTools(read: SectionReader): IptablesFacts {
  const kv = parseKeyValues(read.section('iptables-tools')?.body ?? '');
  const version = kv.version || null;
  return {
    version,
    variant: version ? (/\((nf_tables|legacy)\)/.exec(version)?.[1] === 'nf_tables' ? 'nf_tables' : 'legacy') : null,
    otherVariantRules: Number(kv.other ?? 0) || 0,
    // --noflush has been in iptables-restore since 1.2: having the tool is having the flag.
    restore: kv.restore === '1',
    recentListMax: /^\d{1,9}$/.test(kv.recent_max ?? '') ? Number(kv.recent_max) : null,
    registeredMatches: names(read, 'ip-tables-matches'),
    registeredTargets: names(read, 'ip-tables-targets'),
  };
}

export function readIptablesFacts(read: SectionReader, family: IpFamily, warnings: string[]): BackendFacts {
  const parsed = parseIptablesSave(read.body('iptables', 'iptables-save'));
  const owned = ownedIptablesResources(parsed, family);
  warnings.push(...parsed.warnings, ...owned.warnings);
  for (const ref of owned.foreignReferences) warnings.push(`foreign rule jumps into an lbprov chain: -A ${ref.chain} ${ref.rule} (${ref.table})`);
  const facts = parseIptablesTools(read);
  if (facts.otherVariantRules > 0) {
    warnings.push(`${facts.otherVariantRules} rules exist in the other iptables backend; ${facts.variant ?? 'this'} backend does not see them`);
  }
  return { resources: [...owned.chains, ...owned.jumps], facts: { iptables: facts } };
}
