import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { claimNeighbourTable, neededThresholds, releaseNeighbourTable } from '../../src/lab/neighbours.js';

const work = mkdtempSync(join(tmpdir(), 'lbprov-neigh-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A stand-in for /proc/sys/net/ipv4/neigh/default with the kernel's defaults. */
function sysctls(name: string): { dir: string; read: () => number[] } {
  const dir = join(work, name, 'sysctl');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'gc_thresh1'), '128\n');
  writeFileSync(join(dir, 'gc_thresh2'), '512\n');
  writeFileSync(join(dir, 'gc_thresh3'), '1024\n');
  return { dir, read: () => ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'].map((n) => Number(readFileSync(join(dir, n), 'utf8'))) };
}

describe('the neighbour table of large labs', () => {
  it('leaves the kernel defaults alone for a small lab', () => {
    const s = sysctls('small');
    expect(claimNeighbourTable(join(work, 'small', 'locks'), 'lbaaa', 10, s.dir)).toBeUndefined();
    expect(s.read()).toEqual([128, 512, 1024]);
  });

  it('raises it for the lifetime of the labs that need it and puts the old values back after the last', () => {
    const s = sysctls('large');
    const locks = join(work, 'large', 'locks');
    const first = claimNeighbourTable(locks, 'lbbbb', 1000, s.dir)!;
    const needed = neededThresholds(1000);
    expect(s.read()).toEqual([needed.gc_thresh1, needed.gc_thresh2, needed.gc_thresh3]);
    expect(needed.gc_thresh3).toBeGreaterThanOrEqual(8 * 1000);
    const second = claimNeighbourTable(locks, 'lbccc', 300, s.dir)!;
    // The larger lab's values stay while the smaller one runs.
    expect(s.read()).toEqual([needed.gc_thresh1, needed.gc_thresh2, needed.gc_thresh3]);
    releaseNeighbourTable(first, s.dir);
    // Down to what the lab still running needs.
    expect(s.read()[2]).toBe(neededThresholds(300).gc_thresh3);
    releaseNeighbourTable(second, s.dir);
    expect(s.read()).toEqual([128, 512, 1024]);
  });
});
