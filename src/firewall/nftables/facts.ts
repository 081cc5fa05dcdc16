/**
 * The nftables sections of the facts script: lbprov's own table only (never the whole ruleset,
 * which holds other software's tables and iptables-nft's translations), nft's version, and, while
 * lbprov has no table yet, a dry run (`nft -c`) of a probe table that says whether the kernel has
 * the expressions lbprov's table uses.
 */
import type { NftablesFacts } from '../../model/facts.js';
import type { IpFamily } from '../../model/resources.js';
import { NFT_TABLE } from '../../model/ownership.js';
import { parseKeyValues, type SectionReader } from '../../remote/sections.js';
import type { BackendFacts } from '../backend.js';
import { nftResources } from './owned.js';
import { nftFamily, parseNftTable } from './text.js';

export const NFT_SECTION = 'nftables';

/** Every expression and chain type lbprov's table uses, in a table nft only checks, never loads. */
const PROBE = `table ip lbprov_probe {
set sticky { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 10m; }
chain pick { update @sticky { ip saddr }
}
chain pre { type filter hook prerouting priority mangle - 1; policy accept;
ct mark & 0xf0000000 vmap { 0x10000000 : goto mark1 }
iifname "lo" ct state new numgen inc mod 2 vmap { 0 : jump mark1, 1 : jump mark1 }
}
chain mark1 { meta mark set meta mark & 0x1fffffff | 0x10000000
ct mark set ct mark & 0x1fffffff | 0x10000000
}
chain out { type route hook output priority mangle - 1; policy accept;
}
chain post { type nat hook postrouting priority srcnat - 1; policy accept;
oifname "lo" masquerade
}
}`;

export function nftablesFactsSections(family: IpFamily): [string, string][] {
  const table = `${nftFamily(family)} ${NFT_TABLE}`;
  return [
    // nt=1: the table exists (sections run in the script's own shell, so the next one sees it).
    // -t: without set elements (the sticky sources the kernel learns, not lbprov's state).
    // Without the table, whether nft talks to nf_tables at all: `list flowtables` asks the kernel
    // without fetching rules (`list tables` reads every rule first: 0.2 s beside a 20,000-rule table).
    [NFT_SECTION, `nt=; if nft -s -t list table ${table} 2>/dev/null; then nt=1; else nft list flowtables >/dev/null; fi`],
    [
      'nftables-tools',
      [
        'v=$(nft -v 2>/dev/null); echo "version=$v"',
        `if [ -n "$nt" ]; then echo expressions=in-use; elif [ -n "$v" ]; then if pe=$(nft -c -f - 2>&1 <<'EOF'\n${PROBE}\nEOF\n); then echo expressions=ok; else echo expressions=missing; printf 'probe=%s\\n' "$pe" | head -n 1; fi; fi`,
      ].join('\n'),
    ],
  ];
}

export function parseNftablesTools(read: SectionReader): NftablesFacts {
  const listing = read.section(NFT_SECTION);
  const kv = parseKeyValues(read.section('nftables-tools')?.body ?? '');
  const expressions = kv.expressions;
  return {
    version: kv.version || null,
    usable: listing?.rc === 0,
    expressions: expressions === 'in-use' || expressions === 'ok' || expressions === 'missing' ? expressions : 'unknown',
    probeError: (kv.probe ?? '').slice(0, 300),
  };
}

export function readNftablesFacts(read: SectionReader, family: IpFamily, warnings: string[]): BackendFacts {
  const facts = parseNftablesTools(read);
  const body = read.body(NFT_SECTION, `nft list table ${nftFamily(family)} ${NFT_TABLE}`);
  const table = parseNftTable(body, `nft list table ${nftFamily(family)} ${NFT_TABLE}`);
  if (table && table.name !== NFT_TABLE) warnings.push(`nft listed table ${table.name} for ${NFT_TABLE}`);
  return { resources: nftResources(table), facts: { nftables: facts } };
}
