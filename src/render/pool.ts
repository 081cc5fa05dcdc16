import { hex, linkMark } from '../model/ownership.js';
/**
 * The nth pool: one slot per unit of weight, each link's slots spread evenly
 * over the cycle. Slot k of a link with weight w sits at (k + 1/2) * total / w;
 * ties go to the lighter link, then the earlier one. 3:1 gives the seed's
 * 1,2,1,1; 5:2:1 gives 1,2,1,3,1,1,2,1 rather than 1,1,1,1,1,2,2,3.
 */
export function weightedPool(weights: readonly number[]): number[] {
  const divisor = weights.reduce((g, w) => gcd(g, w), 0);
  if (divisor <= 0) throw new RangeError('weightedPool needs at least one positive weight');
  const reduced = weights.map((w) => w / divisor);
  const total = reduced.reduce((a, b) => a + b, 0);
  const slots: { position: number; link: number }[] = [];
  reduced.forEach((w, link) => {
    // Equal rationals divide to the same double, so ties are detected exactly.
    for (let k = 0; k < w; k++) slots.push({ position: ((2 * k + 1) * total) / (2 * w), link });
  });
  slots.sort((a, b) => a.position - b.position || reduced[a.link]! - reduced[b.link]! || a.link - b.link);
  return slots.map((s) => s.link);
}

function gcd(a: number, b: number): number {
  let x = Math.abs(a);
  let y = Math.abs(b);
  while (y) [x, y] = [y, x % y];
  return x;
}

export interface PoolView {
  every: string;
  /** One per slot of the cycle: its position, the link's mark, index (from 0), number (from 1) and name. */
  slots: { packet: string; mark: string; link: string; number: string; name: string }[];
  /** Set instead of slots when one link is left: a plain mark, no counter. */
  singleMark: string;
  singleName: string;
  singleNumber: string;
}

/** The pool over `links` (index: the link's position in the inventory). */
export function buildPool(markMask: number, links: readonly { index: number; weight: number; name: string }[]): PoolView {
  const order = weightedPool(links.map((l) => l.weight));
  const marks = links.map((l) => hex(linkMark(markMask, l.index)));
  if (links.length === 1) return { every: '1', slots: [], singleMark: marks[0]!, singleName: links[0]!.name, singleNumber: String(links[0]!.index + 1) };
  return {
    every: String(order.length),
    slots: order.map((linkPos, packet) => {
      const link = links[linkPos]!;
      return { packet: String(packet), mark: marks[linkPos]!, link: String(link.index), number: String(link.index + 1), name: link.name };
    }),
    singleMark: '',
    singleName: '',
    singleNumber: '',
  };
}
