/** lbprov's nftables table as a template renders it: `table ip lbprov { chain ... }`, in nft's listing form. */
import { InputError, ParseError } from '../../errors.js';
import { NFT_TABLE } from '../../model/ownership.js';
import type { Resource } from '../../model/resources.js';
import type { FirewallTemplate } from '../backend.js';
import { nftResources } from './owned.js';
import { parseNftTable } from './text.js';

export function nftFromTemplate({ text, at }: FirewallTemplate): Resource[] {
  let table;
  try {
    table = parseNftTable(text, 'nft template');
  } catch (e) {
    if (e instanceof ParseError) throw new InputError(at(e.line ?? 1), 'nftables', `${e.problem}${e.excerpt ? `: ${e.excerpt}` : ''}`);
    throw e;
  }
  if (!table) throw new InputError(at(1), 'nftables', `expected "table ip ${NFT_TABLE} { ... }"`);
  if (table.name !== NFT_TABLE) throw new InputError(at(1), 'nftables', `lbprov manages its own table ${NFT_TABLE}, not ${table.name}`);
  return nftResources(table);
}
