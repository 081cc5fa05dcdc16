/** Address ranges the lab's plan tests check against, as inclusive [first, last] integers. */
import { ipToInt, type AddressPlan } from '../../src/lab/addressing.js';

export const cidrRange = (cidr: string): [number, number] => {
  const [address, length] = cidr.split('/');
  const start = ipToInt(address as string);
  return [start, start + 2 ** (32 - Number(length)) - 1];
};
/** What the lab may use besides its blocks, and the root namespace's management range. */
export const RESERVED = ['198.51.100.0/26', '192.0.2.0/24'].map(cidrRange);
export const DOC_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'].map(cidrRange);

/** Every range a plan hands out to links: customer blocks, alternate blocks, carrier /31s. */
export function linkRanges(plan: AddressPlan): [number, number][] {
  return [
    ...plan.customerBlocks.map((block) => cidrRange(block.cidr)),
    ...plan.alternateBlocks.flatMap((block) => (block !== undefined ? [cidrRange(block.cidr)] : [])),
    ...plan.carriers.flatMap((pairs) => (pairs ?? []).map((pair): [number, number] => [ipToInt(pair.isp), ipToInt(pair.gateway)])),
  ];
}
