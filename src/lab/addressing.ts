/**
 * The lab's address plan. Labs of up to 125 gateways use documentation ranges only; larger ones
 * (up to 1,000) take their management /31s and customer blocks from 198.18.0.0/15, reserved for
 * benchmarking (RFC 2544), still only inside the lab's own namespaces:
 * - 198.18.0.0/16: management /31s of large labs (after the 128 of 192.0.2.0/24);
 * - 198.19.0.0/16: their customer blocks (a /22 per ISP at 1,000 gateways).
 * The documentation ranges:
 * - 192.0.2.0/24: management, one /31 per gateway (root side even, gateway odd). These are the only
 *   addresses in the root namespace, so they are the only ones allocated across concurrent labs.
 * - 198.51.100.0/26: lab infrastructure, identical in every lab (they live in the lab's own namespaces):
 *   LAN 198.51.100.0/28 (gateway .1, client .2), the service addresses 198.51.100.20 and .24 on the
 *   server (in different /30s and /29s, so rules can tell them apart by prefix too), and one /31
 *   per ISP upstream in 198.51.100.32/27 (ISP side even, server side odd = probe target).
 * - the rest of 198.51.100.0/24 and all of 203.0.113.0/24: one customer block per ISP, shared by all
 *   gateways of the lab; the ISP router is the block's first host, gateway i its (1 + i)th.
 *   Dynamic links take more blocks of the same size after the customer blocks: each dhcp or p2p
 *   link one alternate block (the pool it is renumbered into, or every other p2p session's
 *   addresses), and each p2p link the /31s of its relay carriers, one per gateway.
 *   A lab with more than one LAN source takes a second LAN block from what these leave free, the
 *   last range first (so it is 198.51.100.128/x in most labs): lan0 is its first host, the extra
 *   LAN sources the hosts after it. It lives only on the gateways' LAN segments, like the first.
 */
import { LabError } from './errors.js';
import type { LinkKind } from './state.js';

/** Management /31s in 192.0.2.0/24, for labs of up to MAX_DOCUMENTATION_GATEWAYS. */
export const DOCUMENTATION_SLOTS = 128;
/** Then 198.18.0.0/16, for larger labs. */
export const MANAGEMENT_SLOTS = DOCUMENTATION_SLOTS + 32_768;
/** A customer block must hold network, broadcast, the ISP router and every gateway: 125 fill a /25. */
export const MAX_DOCUMENTATION_GATEWAYS = 125;
/**
 * The kernel's bridge and neighbour limits are not what binds here (the ISPs route to each
 * customer over its own veth): 1,000 is what was measured to build, drive and tear down.
 */
export const MAX_GATEWAYS = 1000;
export const SERVICE_ADDRESS = '198.51.100.20';
/** Where the server answers: SERVICE_ADDRESS first. */
export const SERVICE_ADDRESSES: readonly string[] = [SERVICE_ADDRESS, '198.51.100.24'];
export const LAN_PREFIX_LENGTH = 28;
export const LAN_GATEWAY_ADDRESS = '198.51.100.1';
export const LAN_CLIENT_ADDRESS = '198.51.100.2';
const UPSTREAM_BASE = ipToInt('198.51.100.32');
const UPSTREAM_BLOCK = '198.51.100.32/27';
const MAX_LINKS_BY_UPSTREAMS = 16;
/** LAN_CLIENT_ADDRESS and 59 more: the second LAN block is then a /26 (network, broadcast, lan0, 59 sources). */
export const MAX_LAN_SOURCES = 60;
type Range = readonly [start: number, size: number];
/** Ranges the customer blocks are carved from, in order. */
const CUSTOMER_RANGES: readonly Range[] = [
  [ipToInt('203.0.113.0'), 256],
  [ipToInt('198.51.100.64'), 64],
  [ipToInt('198.51.100.128'), 128],
];
const LARGE_LAB_CUSTOMER_RANGES: readonly Range[] = [[ipToInt('198.19.0.0'), 65_536]];

function customerRanges(gateways: number): readonly Range[] {
  return gateways > MAX_DOCUMENTATION_GATEWAYS ? LARGE_LAB_CUSTOMER_RANGES : CUSTOMER_RANGES;
}

/** The management slots a lab of `gateways` takes its /31s from: [first, end). */
export function managementSlotRange(gateways: number): [number, number] {
  return gateways > MAX_DOCUMENTATION_GATEWAYS ? [DOCUMENTATION_SLOTS, MANAGEMENT_SLOTS] : [0, DOCUMENTATION_SLOTS];
}

export function ipToInt(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) {
    throw new LabError(`not an IPv4 address: ${address}`);
  }
  return parts.reduce((value, part) => value * 256 + part, 0);
}

export function intToIp(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export interface ManagementPair {
  slot: number;
  /** Root-namespace end. */
  root: string;
  /** Gateway end: where SSH connects. */
  gateway: string;
}

export function managementPair(slot: number): ManagementPair {
  if (!Number.isInteger(slot) || slot < 0 || slot >= MANAGEMENT_SLOTS) throw new LabError(`management slot out of range: ${slot}`);
  const base = slot < DOCUMENTATION_SLOTS ? ipToInt('192.0.2.0') + 2 * slot : ipToInt('198.18.0.0') + 2 * (slot - DOCUMENTATION_SLOTS);
  return { slot, root: intToIp(base), gateway: intToIp(base + 1) };
}

export interface Upstream {
  /** ISP router's end of its link to the server. */
  isp: string;
  /** Server's end: answers only through this ISP, so it is the link's probe target. */
  server: string;
}

/** `link` counts from 1. */
export function upstream(link: number): Upstream {
  const base = UPSTREAM_BASE + 2 * (link - 1);
  return { isp: intToIp(base), server: intToIp(base + 1) };
}

export const upstreamBlock = UPSTREAM_BLOCK;

export interface CustomerBlock {
  /** e.g. 203.0.113.0/29 */
  cidr: string;
  prefixLength: number;
  /** The ISP router's address in the block: every gateway's next hop on this link. */
  nextHop: string;
}

/** Both ends of one /31 between a gateway and its ISP: ISP end even, gateway end odd. */
export interface CarrierPair {
  isp: string;
  gateway: string;
}

export interface AddressPlan {
  customerBlocks: CustomerBlock[];
  /** Per link: the second block of a dhcp or p2p link; undefined for static links. */
  alternateBlocks: (CustomerBlock | undefined)[];
  /** Per link: one carrier /31 per gateway (in gateway order) for p2p links; undefined for the others. */
  carriers: (CarrierPair[] | undefined)[];
  /** With more than one LAN source: the second LAN block (its nextHop is lan0's address in it). */
  secondLan?: CustomerBlock;
}

/** Smallest block holding network, broadcast, the ISP router and every gateway, at least a /29. */
function customerBlockSize(gateways: number): number {
  let size = 8;
  while (size < gateways + 3) size *= 2;
  return size;
}

function customerBlock(base: number, size: number): CustomerBlock {
  const prefixLength = 32 - Math.log2(size);
  return { cidr: `${intToIp(base)}/${prefixLength}`, prefixLength, nextHop: intToIp(base + 1) };
}

/** Smallest block holding network, broadcast, lan0 and `sources` LAN sources. */
function lanBlockSize(sources: number): number {
  let size = 4;
  while (size < sources + 3) size *= 2;
  return size;
}

/** The first aligned block of `size` addresses clear of `used` ([start, end) each), the last customer range first. */
function freeBlock(ranges: readonly Range[], size: number, used: readonly (readonly [number, number])[]): number | undefined {
  for (const [start, rangeSize] of [...ranges].reverse()) {
    for (let base = Math.ceil(start / size) * size; base + size <= start + rangeSize; base += size) {
      if (used.every(([low, high]) => base + size <= low || base >= high)) return base;
    }
  }
  return undefined;
}

export function planAddresses(
  gateways: number,
  links: number,
  kinds: readonly LinkKind[] = Array<LinkKind>(links).fill('static'),
  lanSources = 1,
): AddressPlan {
  if (!Number.isInteger(gateways) || gateways < 1 || gateways > MAX_GATEWAYS) {
    throw new LabError(`gateways must be an integer in [1, ${MAX_GATEWAYS}], got ${gateways}`);
  }
  if (!Number.isInteger(links) || links < 2) throw new LabError(`links must be an integer >= 2, got ${links}`);
  if (kinds.length !== links) throw new LabError(`${kinds.length} link kinds given for ${links} links`);
  if (!Number.isInteger(lanSources) || lanSources < 1 || lanSources > MAX_LAN_SOURCES) {
    throw new LabError(`lanSources must be an integer in [1, ${MAX_LAN_SOURCES}], got ${lanSources}`);
  }
  const size = customerBlockSize(gateways);
  const blocks: number[] = [];
  const ranges = customerRanges(gateways);
  for (const [start, rangeSize] of ranges) {
    for (let base = Math.ceil(start / size) * size; base + size <= start + rangeSize; base += size) blocks.push(base);
  }
  const maxLinks = Math.min(blocks.length, MAX_LINKS_BY_UPSTREAMS);
  if (links > maxLinks) {
    throw new LabError(`${gateways} gateways with ${links} links do not fit the documentation ranges (at most ${maxLinks} links at this size)`);
  }
  const spare = blocks.slice(links);
  const carrierBlocksPerLink = Math.ceil((2 * gateways) / size);
  const needed = kinds.filter((kind) => kind !== 'static').length + carrierBlocksPerLink * kinds.filter((kind) => kind === 'p2p').length;
  if (needed > spare.length) {
    throw new LabError(
      `${gateways} gateways with links ${kinds.join(',')} do not fit the documentation ranges (dynamic links need ${needed} more blocks of ${size} addresses, ${spare.length} are left)`,
    );
  }
  const taken = blocks.slice(0, links);
  const take = (): number => {
    const base = spare.shift() as number;
    taken.push(base);
    return base;
  };
  const alternateBlocks = kinds.map((kind) => (kind === 'static' ? undefined : customerBlock(take(), size)));
  const carriers = kinds.map((kind) => {
    if (kind !== 'p2p') return undefined;
    const bases = Array.from({ length: carrierBlocksPerLink }, take);
    return Array.from({ length: gateways }, (_, index) => {
      const base = (bases[Math.floor((2 * index) / size)] as number) + ((2 * index) % size);
      return { isp: intToIp(base), gateway: intToIp(base + 1) };
    });
  });
  const plan: AddressPlan = { customerBlocks: blocks.slice(0, links).map((base) => customerBlock(base, size)), alternateBlocks, carriers };
  if (lanSources > 1) {
    const lanSize = lanBlockSize(lanSources - 1);
    const base = freeBlock(ranges, lanSize, taken.map((start): [number, number] => [start, start + size]));
    if (base === undefined) {
      throw new LabError(
        `${gateways} gateways with links ${kinds.join(',')} leave no block of ${lanSize} addresses for ${lanSources} LAN sources in the documentation ranges`,
      );
    }
    plan.secondLan = customerBlock(base, lanSize);
  }
  return plan;
}

/** Gateway `index` (from 1) on a customer block. */
export function customerAddress(block: CustomerBlock, index: number): string {
  const base = ipToInt(block.cidr.split('/')[0] as string);
  return intToIp(base + 1 + index);
}
