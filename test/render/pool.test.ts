import { describe, expect, it } from 'vitest';
import { weightedPool } from '../../src/render/pool.js';

const count = (pool: number[], link: number) => pool.filter((l) => l === link).length;

describe('weightedPool', () => {
  it('gives the seed order for 3:1', () => {
    expect(weightedPool([3, 1])).toEqual([0, 1, 0, 0]);
  });

  it('spreads the heavy link of 5:2:1 instead of grouping it', () => {
    const pool = weightedPool([5, 2, 1]);
    expect(pool).toHaveLength(8);
    expect([0, 1, 2].map((l) => count(pool, l))).toEqual([5, 2, 1]);
    // No more than two slots of link 0 in a row anywhere in the cycle.
    const twice = [...pool, ...pool];
    for (let i = 0; i + 2 < twice.length; i++) expect(twice.slice(i, i + 3).every((l) => l === 0)).toBe(false);
  });

  it('reduces weights by their common divisor', () => {
    expect(weightedPool([6, 2])).toEqual(weightedPool([3, 1]));
    expect(weightedPool([4, 4, 4])).toEqual([0, 1, 2]);
  });

  it('gives each link exactly its weight in slots for many shapes', () => {
    for (const weights of [[1, 1], [7, 3], [2, 3, 5], [1, 1, 1, 1, 1, 1, 1, 1], [100, 1], [13, 7, 2, 1]]) {
      const pool = weightedPool(weights);
      const divisor = weights.reduce((a, b) => (b === 0 ? a : gcd(a, b)));
      weights.forEach((w, link) => expect(count(pool, link)).toBe(w / divisor));
    }
  });
});

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
