/**
 * Machine-wide allocation of what labs share: name prefixes and management /31s in the root
 * namespace. A lock is a directory (mkdir is atomic) holding owner.json; labs built concurrently by
 * other processes therefore never collide. A lock whose lab vanished without `destroy` (killed
 * test run) is reclaimed once it is old enough and nothing of its lab is left on the machine.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANAGEMENT_SLOTS, managementSlotRange } from './addressing.js';
import { LabError } from './errors.js';

export const DEFAULT_LOCK_ROOT = '/run/lbprov-lab';
const STALE_AFTER_MS = 120_000;

export interface LockOwner {
  prefix: string;
  stateFile: string;
  createdAt: number;
}

export interface SlotLock {
  slot: number;
  path: string;
}

export class LabLocks {
  constructor(readonly root: string = DEFAULT_LOCK_ROOT) {}

  /** Claims `prefix` for one lab; false when another lab holds it. */
  acquirePrefix(owner: LockOwner): string | undefined {
    const path = join(this.root, 'prefix', owner.prefix);
    return this.tryLock(path, owner) ? path : undefined;
  }

  /**
   * Claims `count` management slots (lowest free first) in the range a lab of that size uses; a
   * small lab that finds 192.0.2.0/24 taken by other labs uses 198.18.0.0/16 instead. All or nothing.
   */
  acquireSlots(count: number, owner: LockOwner): SlotLock[] {
    const [first, end] = managementSlotRange(count);
    const ranges: [number, number][] = end < MANAGEMENT_SLOTS ? [[first, end], [end, MANAGEMENT_SLOTS]] : [[first, end]];
    let free = 0;
    for (const range of ranges) {
      // Counted before locking: a lab that cannot fit would otherwise lock, then release, every free slot.
      free = this.freeIn(range);
      if (free < count) continue;
      const taken = this.slotsIn(range, count, owner);
      if (taken.length === count) return taken;
      free = taken.length;
      releaseLocks(taken.map((lock) => lock.path), owner.stateFile);
    }
    throw new LabError(`only ${free} of the ${count} management /31s are free (other labs hold the rest; see ${this.root})`);
  }

  /** Slots of [first, end) that no live lab holds. */
  private freeIn([first, end]: readonly [number, number]): number {
    const dir = join(this.root, 'mgmt');
    const held = readdirSafe(dir).filter((name) => {
      const slot = Number(name);
      return Number.isInteger(slot) && slot >= first && slot < end && !isStale(join(dir, name));
    });
    return end - first - held.length;
  }

  /** Up to `count` free slots of [first, end), locked. */
  private slotsIn([first, end]: readonly [number, number], count: number, owner: LockOwner): SlotLock[] {
    const taken: SlotLock[] = [];
    for (let slot = first; slot < end && taken.length < count; slot++) {
      const path = join(this.root, 'mgmt', String(slot));
      if (this.tryLock(path, owner)) taken.push({ slot, path });
    }
    return taken;
  }

  private tryLock(path: string, owner: LockOwner): boolean {
    mkdirSync(join(path, '..'), { recursive: true });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        mkdirSync(path);
        writeFileSync(join(path, 'owner.json'), JSON.stringify(owner));
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (!isStale(path)) return false;
        rmSync(path, { recursive: true, force: true });
      }
    }
    return false;
  }
}

/** Releases the locks that `stateFile`'s lab still owns (never one another lab took over since). */
export function releaseLocks(paths: readonly string[], stateFile: string): void {
  for (const path of paths) {
    if (readOwner(path)?.stateFile === stateFile) rmSync(path, { recursive: true, force: true });
  }
}

function readOwner(lockPath: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(join(lockPath, 'owner.json'), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

function isStale(lockPath: string): boolean {
  const owner = readOwner(lockPath);
  // No readable owner: being written right now (or a crash between mkdir and write: left for a human).
  if (owner === undefined) return false;
  if (Date.now() - owner.createdAt < STALE_AFTER_MS || existsSync(owner.stateFile)) return false;
  const isOurs = (name: string): boolean => name.startsWith(owner.prefix);
  return !readdirSafe('/run/netns').some(isOurs) && !readdirSafe('/sys/class/net').some(isOurs);
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
