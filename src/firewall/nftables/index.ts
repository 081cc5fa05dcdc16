/**
 * The nftables backend: lbprov's own table (`table ip lbprov`, one per address family: IPv6 will
 * add `table ip6 lbprov` beside it without touching this one), read with `nft -s list table` and
 * changed in one `nft -f` transaction. Nothing outside the table is ever read or changed.
 */
import type { FirewallBackend } from '../backend.js';
import { modulePlanFor } from '../kernel-pieces.js';
import { nftablesChecks, nftPiecesUsedBy } from './checks.js';
import { NFT_SECTION, nftablesFactsSections, readNftablesFacts } from './facts.js';
import { NFT_BOOT_RESTORE, nftBootPayload } from './persist.js';
import { NFTABLES_SCHEMAS } from './schemas.js';
import { NFT_LOAD, nftSteps } from './steps.js';
import { nftFromTemplate } from './template.js';
import { nftView } from './view.js';
import { nftStickyCount, nftStickyFlush } from './policy.js';

export const nftablesBackend: FirewallBackend = {
  name: 'nftables',
  kinds: ['nft-table', 'nft-chain', 'nft-set'],
  resourceSchemas: NFTABLES_SCHEMAS,
  autoProbe: { present: 'command -v nft >/dev/null 2>&1', section: NFT_SECTION },
  factsSections: nftablesFactsSections,
  readFacts: readNftablesFacts,
  usable: (read) => {
    const s = read.section(NFT_SECTION);
    if (!s) return { usable: false, why: 'nft is not installed' };
    return s.rc === 0 ? { usable: true, why: 'nft works with the kernel\'s nf_tables' } : { usable: false, why: `nft cannot use the kernel's nf_tables (${s.stderr.trim().split('\n')[0] || `exit ${s.rc}`})` };
  },
  resourcesFromTemplate: nftFromTemplate,
  applySteps: nftSteps,
  checks: (_gw, facts, desired) => nftablesChecks(facts, desired),
  modulePlan: (desired, modules, firewall) => modulePlanFor(nftPiecesUsedBy(desired, firewall.nftables), modules),
  bootPayload: nftBootPayload,
  bootRestore: NFT_BOOT_RESTORE,
  swapCommand: NFT_LOAD,
  templateView: nftView,
  stickyFlush: (link, sticky) => nftStickyFlush(link.name, sticky.timeoutS),
  stickyCount: (link, sticky) => nftStickyCount(link.name, sticky.timeoutS),
};

export { nftPayload } from './steps.js';
export { parseNftTable, tableText } from './text.js';
export { hex8, nftMarkSet, nftView, type NftView } from './view.js';
