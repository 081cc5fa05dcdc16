/**
 * The cgroups nspawn is started from. It makes its payload/ and supervisor/ cgroups where it runs,
 * so each container is started from a cgroup of its own in every hierarchy it uses (the v1
 * name=systemd one and cgroup2), which also lists every process of the container for destroy.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';

/**
 * Mount points of the hierarchies nspawn uses, from a /proc/self/mountinfo text: cgroup2, and the
 * v1 hierarchy named systemd when the machine runs in hybrid or legacy mode.
 */
export function nspawnHierarchies(mountinfo: string): string[] {
  const found: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (before === undefined || after === undefined) continue;
    const mountPoint = before.split(' ')[4];
    const [type, , options = ''] = after.split(' ');
    if (mountPoint === undefined) continue;
    if (type === 'cgroup2' || (type === 'cgroup' && options.split(',').includes('name=systemd'))) found.push(mountPoint);
  }
  return found;
}

export function hostHierarchies(): string[] {
  const found = nspawnHierarchies(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (found.length === 0) throw new LabError('no cgroup2 or name=systemd cgroup hierarchy is mounted: systemd-nspawn needs one');
  return found;
}

export function makeCgroups(cgroups: readonly string[]): void {
  for (const cgroup of cgroups) mkdirSync(cgroup, { recursive: true });
}

/** A cgroup and every cgroup below it, deepest first. */
function subtree(cgroup: string): string[] {
  let entries;
  try {
    entries = readdirSync(cgroup, { withFileTypes: true });
  } catch (error) {
    // A running systemd removes a finished unit's cgroup while the walk is under way.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const children = entries.filter((entry) => entry.isDirectory());
  return [...children.flatMap((child) => subtree(join(cgroup, child.name))), cgroup];
}

/** Every process in these cgroups or below them. */
export function pidsInCgroups(cgroups: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const dir of cgroups.flatMap(subtree)) {
    try {
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (pid !== '') pids.add(Number(pid));
    } catch {
      // Removed meanwhile.
    }
  }
  return [...pids];
}

/** Removes the (empty) cgroups and their subtrees, then their parent when no other lab uses it. */
export function removeCgroups(cgroups: readonly string[]): void {
  for (const dir of cgroups.flatMap(subtree)) {
    try {
      rmdirSync(dir);
    } catch (error) {
      throw new LabError(`cannot remove cgroup ${dir}: ${(error as Error).message}`);
    }
  }
  for (const parent of new Set(cgroups.map((cgroup) => join(cgroup, '..')))) {
    try {
      rmdirSync(parent);
    } catch {
      // Another lab's containers are still in it, or it is gone already.
    }
  }
}
