/** What the nftables backend needs on a gateway: nft, the kernel's nf_tables, the expressions its table uses. */
import type { CheckResult } from '../../model/checks.js';
import type { HostFacts, NftablesFacts } from '../../model/facts.js';
import type { Resource } from '../../model/resources.js';
import { ofKind } from '../../model/resources.js';
import { checkPiece, type KernelPiece } from '../kernel-pieces.js';

const INSTALL_NFT = 'install nftables (Debian/Ubuntu: apt install nftables), or use firewall: iptables';

interface ExpressionInfo {
  label: string;
  modules: string[];
  config: string;
  /** Where it shows in a rendered chain. */
  used: RegExp;
}

const EXPRESSIONS: Record<string, ExpressionInfo> = {
  nf_tables: { label: 'nf_tables', modules: ['nf_tables'], config: 'CONFIG_NF_TABLES', used: /./ },
  numgen: { label: 'numgen expression', modules: ['nft_numgen'], config: 'CONFIG_NFT_NUMGEN', used: /\bnumgen\b/ },
  ct: { label: 'ct expression', modules: ['nft_ct'], config: 'CONFIG_NFT_CT', used: /\bct (mark|state)\b/ },
  masquerade: { label: 'masquerade expression', modules: ['nft_masq'], config: 'CONFIG_NFT_MASQ', used: /\bmasquerade\b/ },
  nat: { label: 'nat chain type', modules: ['nft_chain_nat'], config: 'CONFIG_NFT_NAT', used: /^type nat /m },
  dynset: { label: 'dynamic set updates (sticky sources)', modules: ['nf_tables'], config: 'CONFIG_NF_TABLES_SET', used: /\bupdate @/ },
};

export function nftPiecesUsedBy(desired: readonly Resource[], nft: NftablesFacts | undefined): KernelPiece[] {
  const text = ofKind(desired, 'nft-chain').flatMap((c) => [c.header, ...c.rules]).join('\n');
  const present = nft?.expressions === 'in-use' || nft?.expressions === 'ok';
  const detail = present
    ? nft?.expressions === 'in-use'
      ? "built in (a kernel without loadable modules; lbprov's table that uses it is loaded)"
      : 'built in (a kernel without loadable modules; nft -c of a table using it passed)'
    : nft?.expressions === 'missing'
      ? `not in this kernel: nft -c of a table using it failed (${nft.probeError || 'no message'})`
      : 'unknown: nft could not be asked';
  // nf_tables itself is there when nft talks to it, whatever the probe of the expressions said.
  const core = nft?.usable ? { present: true, detail: 'built in (a kernel without loadable modules; nft talks to nf_tables)' } : { present: false, detail: 'nft cannot list the kernel\'s tables' };
  return Object.entries(EXPRESSIONS)
    .filter(([, e]) => desired.length === 0 || e.used.test(text))
    .map(([name, e]) => ({ id: `nftables:${name}`, label: e.label, modules: e.modules, config: e.config, registered: null, withoutModules: name === 'nf_tables' ? core : { present, detail } }));
}

export function nftablesChecks(facts: HostFacts, desired: readonly Resource[]): CheckResult[] {
  const nft = facts.firewall.nftables;
  const out: CheckResult[] = [];
  if (!nft?.version) {
    out.push({ id: 'tool:nft', status: 'fail', message: 'nft is not installed', remedy: INSTALL_NFT });
    return out;
  }
  out.push({ id: 'tool:nft', status: 'ok', message: nft.version });
  out.push(
    nft.usable
      ? { id: 'tool:nft-kernel', status: 'ok', message: 'nft talks to the kernel\'s nf_tables' }
      : { id: 'tool:nft-kernel', status: 'fail', message: 'nft cannot use the kernel\'s nf_tables', remedy: 'a kernel with CONFIG_NF_TABLES (the distribution\'s standard kernel), or use firewall: iptables' },
  );
  out.push(...nftPiecesUsedBy(desired, nft).map((p) => checkPiece(p, facts.modules)));
  return out;
}
