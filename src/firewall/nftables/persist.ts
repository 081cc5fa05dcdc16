/**
 * What outlives a reboot for nftables: lbprov's whole table, loaded at boot in one `nft -f` that
 * replaces it whether or not it is there (declare, delete, define: nft 1.0.6 has no `destroy`).
 */
import { NFT_TABLE } from '../../model/ownership.js';
import { PERSIST_DIR } from '../../model/paths.js';
import type { Resource } from '../../model/resources.js';
import { ofKind } from '../../model/resources.js';
import type { BootPayload } from '../backend.js';
import { nftFamily, tableText } from './text.js';

export function nftBootPayload(desired: readonly Resource[]): BootPayload {
  const lines = ['# Managed by lbprov: its nftables table, loaded at boot by /etc/lbprov/restore.sh with nft -f.'];
  for (const table of ofKind(desired, 'nft-table')) {
    const t = `${nftFamily(table.family)} ${NFT_TABLE}`;
    const chains = ofKind(desired, 'nft-chain').filter((c) => c.family === table.family);
    const sets = ofKind(desired, 'nft-set').filter((x) => x.family === table.family);
    const text = tableText(table.family, NFT_TABLE, chains.map((c) => ({ name: c.chain, header: c.header, rules: c.rules })), sets.map((x) => ({ name: x.set, declaration: x.declaration })));
    lines.push(`table ${t} {}`, `delete table ${t}`, text.trimEnd());
  }
  return { path: `${PERSIST_DIR}/nftables.nft`, content: lines.join('\n') + '\n' };
}

/** `restore_firewall FILE`: one transaction, so a file nft refuses leaves the table as it was. */
export const NFT_BOOT_RESTORE = `restore_firewall() {
	[ -f "$1" ] || return 0
	nft -f "$1" || fail "nft -f $1 failed"
}`;
