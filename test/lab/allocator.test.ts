import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabLocks, releaseLocks } from '../../src/lab/allocator.js';

const roots: string[] = [];
function locks(): LabLocks {
  const root = mkdtempSync(join(tmpdir(), 'lbprov-locks-'));
  roots.push(root);
  return new LabLocks(root);
}
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

// Prefixes that exist nowhere on this machine, so no namespace or link can make them look alive.
const owner = (name: string, createdAt = Date.now()) => ({ prefix: `zzlocktest${name}`, stateFile: `/nonexistent/${name}/state.json`, createdAt });

describe('lab allocator', () => {
  it('never hands the same management slot to two labs', () => {
    const allocator = locks();
    const first = allocator.acquireSlots(3, owner('a'));
    const second = allocator.acquireSlots(2, owner('b'));
    expect(first.map((lock) => lock.slot)).toEqual([0, 1, 2]);
    expect(second.map((lock) => lock.slot)).toEqual([3, 4]);
  });

  it('takes a small lab to 198.18.0.0/16 when 192.0.2.0/24 has too few slots left, all or nothing', () => {
    const allocator = locks();
    allocator.acquireSlots(120, owner('a'));
    const b = allocator.acquireSlots(10, owner('b'));
    expect(b.map((lock) => lock.slot)).toEqual(Array.from({ length: 10 }, (_, i) => 128 + i));
    expect(allocator.acquireSlots(8, owner('c')).map((lock) => lock.slot)).toEqual([120, 121, 122, 123, 124, 125, 126, 127]);
  });

  it('gives a large lab slots of 198.18.0.0/16 only, and refuses what does not fit', () => {
    const allocator = locks();
    expect(allocator.acquireSlots(126, owner('a'))[0]!.slot).toBe(128);
    expect(() => allocator.acquireSlots(32_768, owner('b'))).toThrow(/only 32642 of the 32768/);
  });

  it('gives a prefix to one lab only', () => {
    const allocator = locks();
    const a = owner('a');
    expect(allocator.acquirePrefix(a)).toBeDefined();
    expect(allocator.acquirePrefix({ ...owner('b'), prefix: a.prefix })).toBeUndefined();
  });

  it('releases only locks the lab still owns', () => {
    const allocator = locks();
    const [lock] = allocator.acquireSlots(1, owner('a'));
    releaseLocks([lock!.path], owner('b').stateFile);
    expect(existsSync(lock!.path)).toBe(true);
    releaseLocks([lock!.path], owner('a').stateFile);
    expect(existsSync(lock!.path)).toBe(false);
  });

  it('reclaims a lock of a vanished lab once it is old, not before', () => {
    const allocator = locks();
    allocator.acquireSlots(1, owner('young'));
    expect(allocator.acquireSlots(1, owner('b'))[0]?.slot).toBe(1);

    const oldButAlive = owner('alive', Date.now() - 600_000);
    const stateDir = mkdtempSync(join(tmpdir(), 'lbprov-lockstate-'));
    roots.push(stateDir);
    writeFileSync(join(stateDir, 'state.json'), '{}');
    allocator.acquireSlots(1, { ...oldButAlive, stateFile: join(stateDir, 'state.json') });
    allocator.acquireSlots(1, owner('vanished', Date.now() - 600_000));
    // Slot 2 belongs to a lab whose state file exists, slot 3 to one that is gone.
    expect(allocator.acquireSlots(1, owner('c'))[0]?.slot).toBe(3);
  });
});
