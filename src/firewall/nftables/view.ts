/**
 * The values nftables templates need in the exact form nft 1.0.6 prints them back (measured:
 * test/fixtures/nftables): 32-bit constants padded to 8 hex digits, and a mark setter
 * `x & K | V` printed with K folded to (K | V), or as `x | V` when V fills the whole mask.
 */
import type { GatewaySpec } from '../../model/inventory.js';
import { linkMark } from '../../model/ownership.js';
import { nftDuration, nftRuleDispatch, stickySetName, type NftRuleDispatchView } from './policy.js';

export function hex8(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/** `meta mark set meta mark & 0x1fffffff | 0x10000000`: mark `value` into the bits of `mask`, the others kept. */
export function nftMarkSet(key: 'meta mark' | 'ct mark', mask: number, value: number): string {
  const keep = (~mask | value) >>> 0;
  if (value === mask >>> 0) return `${key} set ${key} | ${hex8(value)}`;
  if (value === 0) return `${key} set ${key} & ${hex8(keep)}`;
  return `${key} set ${key} & ${hex8(keep)} | ${hex8(value)}`;
}

export interface NftLinkView {
  name: string;
  mark: string;
  setMark: string;
  setCtMark: string;
  /** The set of sources sticking to the link ('' without sticky). */
  stickySet: string;
}

export interface NftView {
  /** The mask as a key of a vmap: `ct mark & 0xf0000000 vmap { ... }`. */
  markMask: string;
  links: NftLinkView[];
  rules: NftRuleDispatchView[];
  /** The sticky timeout as nft prints it ('' without sticky). */
  stickyTimeout: string;
}

export function nftView(gw: Pick<GatewaySpec, 'markMask' | 'links' | 'rules' | 'lanInterfaces' | 'sticky'>): NftView {
  const { markMask } = gw;
  return {
    markMask: hex8(markMask),
    links: gw.links.map((l, i) => {
      const mark = linkMark(markMask, i);
      return {
        name: l.name,
        mark: hex8(mark),
        setMark: nftMarkSet('meta mark', markMask, mark),
        setCtMark: nftMarkSet('ct mark', markMask, mark),
        stickySet: gw.sticky ? stickySetName(l.name, gw.sticky.timeoutS) : '',
      };
    }),
    rules: nftRuleDispatch(gw),
    stickyTimeout: gw.sticky ? nftDuration(gw.sticky.timeoutS) : '',
  };
}
