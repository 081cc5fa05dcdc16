/** lbprov's nftables resources: its table, each of its sets and chains. The whole table is lbprov's. */
import type { IpFamily, NftChainResource, NftSetResource, NftTableResource, Resource } from '../../model/resources.js';
import { resourceId } from '../../model/resources.js';
import type { NftChainText, NftSetText, NftTableText } from './text.js';

export function nftTableResource(family: IpFamily, name: string): NftTableResource {
  return { kind: 'nft-table', id: resourceId('nft-table', name, family), family, name };
}

export function nftChainResource(family: IpFamily, chain: NftChainText): NftChainResource {
  return { kind: 'nft-chain', id: resourceId('nft-chain', chain.name, family), family, chain: chain.name, header: chain.header, rules: [...chain.rules] };
}

export function nftSetResource(family: IpFamily, set: NftSetText): NftSetResource {
  return { kind: 'nft-set', id: resourceId('nft-set', set.name, family), family, set: set.name, declaration: [...set.declaration] };
}

export function nftResources(table: NftTableText | null): Resource[] {
  if (!table) return [];
  return [
    nftTableResource(table.family, table.name),
    ...table.sets.map((x) => nftSetResource(table.family, x)),
    ...table.chains.map((c) => nftChainResource(table.family, c)),
  ];
}
