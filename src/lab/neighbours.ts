/**
 * The kernel's neighbour (ARP) table is one for every namespace, sized in the root namespace only
 * (gc_thresh1/2/3, default 128/512/1024). A lab needs a few entries per gateway (management, each
 * link on both ends, its LAN); at 1,000 gateways with the defaults 462 were unreachable. A lab
 * that needs more raises the thresholds for its lifetime and records a claim; the last lab to go
 * puts back the values found before the first one raised them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SYSCTL_DIR = '/proc/sys/net/ipv4/neigh/default';
const THRESHOLDS = ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'] as const;
type Thresholds = Record<(typeof THRESHOLDS)[number], number>;
/** Generous per gateway: management 2, each of up to 4 links 2, the LAN 2, and room to spare. */
const ENTRIES_PER_GATEWAY = 16;

/** What a lab of `gateways` needs: the table holds them all, and garbage collection starts late. */
export function neededThresholds(gateways: number): Thresholds {
  const entries = ENTRIES_PER_GATEWAY * gateways;
  return { gc_thresh1: entries / 4, gc_thresh2: (entries * 3) / 4, gc_thresh3: entries };
}

function readThresholds(sysctlDir: string): Thresholds {
  const read = (name: string): number => Number(readFileSync(join(sysctlDir, name), 'utf8').trim());
  return { gc_thresh1: read('gc_thresh1'), gc_thresh2: read('gc_thresh2'), gc_thresh3: read('gc_thresh3') };
}

function writeThresholds(sysctlDir: string, values: Thresholds): void {
  for (const name of THRESHOLDS) writeFileSync(join(sysctlDir, name), `${values[name]}\n`);
}

function atLeast(a: Thresholds, b: Thresholds): Thresholds {
  return { gc_thresh1: Math.max(a.gc_thresh1, b.gc_thresh1), gc_thresh2: Math.max(a.gc_thresh2, b.gc_thresh2), gc_thresh3: Math.max(a.gc_thresh3, b.gc_thresh3) };
}

const readJson = (path: string): Thresholds => JSON.parse(readFileSync(path, 'utf8')) as Thresholds;

/**
 * Raises the thresholds to what `gateways` need when the machine's own values (those found before
 * any lab raised them) are lower; returns the claim to release, or undefined when they suffice.
 */
export function claimNeighbourTable(lockRoot: string, prefix: string, gateways: number, sysctlDir = SYSCTL_DIR): string | undefined {
  const dir = join(lockRoot, 'neighbours');
  const original = join(dir, 'original.json');
  const machine = existsSync(original) ? readJson(original) : readThresholds(sysctlDir);
  const needed = neededThresholds(gateways);
  if (THRESHOLDS.every((name) => machine[name] >= needed[name])) return undefined;
  mkdirSync(dir, { recursive: true });
  if (!existsSync(original)) writeFileSync(original, JSON.stringify(machine));
  const claim = join(dir, `${prefix}.json`);
  writeFileSync(claim, JSON.stringify(needed));
  writeThresholds(sysctlDir, atLeast(readThresholds(sysctlDir), needed));
  return claim;
}

/** Drops the claim: the thresholds go back to what the remaining claims need, or to the machine's own values. */
export function releaseNeighbourTable(claim: string, sysctlDir = SYSCTL_DIR): void {
  rmSync(claim, { force: true });
  const dir = join(claim, '..');
  const original = join(dir, 'original.json');
  if (!existsSync(original)) return;
  const others = readdirSync(dir).filter((name) => name !== 'original.json' && name.endsWith('.json'));
  writeThresholds(sysctlDir, others.reduce((values, name) => atLeast(values, readJson(join(dir, name))), readJson(original)));
  if (others.length === 0) rmSync(original, { force: true });
}
