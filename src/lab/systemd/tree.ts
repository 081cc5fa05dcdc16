/**
 * The Debian 12 tree every systemd gateway boots from: made once by debootstrap from the mirror apt
 * already uses, cached on the machine and only ever read (each gateway writes to its own overlay).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import { run } from '../run.js';

export const TREE_SUITE = 'bookworm';
export const TREE_PACKAGES: readonly string[] = [
  'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'iproute2', 'iptables', 'nftables',
  'procps', 'iputils-ping', 'conntrack', 'kmod',
];
export const DEFAULT_TREE_CACHE = '/var/cache/lbprov-lab';
const DEBOOTSTRAP_TIMEOUT_MS = 15 * 60_000;

const APT_SOURCES = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];

/**
 * The first Debian mirror of an apt sources text: deb822 (`URIs:` lines) or one-line
 * (`deb [options] URI suite ...`); undefined when there is none.
 */
export function mirrorFromSources(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    const deb822 = /^URIs:\s*(\S+)/i.exec(line);
    if (deb822?.[1] !== undefined) return deb822[1];
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
    if (oneLine?.[1] !== undefined) return oneLine[1];
  }
  return undefined;
}

/** The mirror apt uses on this machine, read at run time (never hard-coded). */
export function aptMirror(sources: readonly string[] = APT_SOURCES): string {
  for (const file of sources) {
    if (!existsSync(file)) continue;
    const mirror = mirrorFromSources(readFileSync(file, 'utf8'));
    if (mirror !== undefined) return mirror;
  }
  throw new LabError(`no Debian mirror found in ${sources.join(' or ')}: systemd gateways need one to build their tree`);
}

/** Where the tree for this suite and package list lives: a new list makes a new tree. */
export function treeDir(cacheRoot: string = DEFAULT_TREE_CACHE): string {
  const hash = createHash('sha256').update(`${TREE_SUITE} minbase ${TREE_PACKAGES.join(',')}`).digest('hex').slice(0, 12);
  return join(cacheRoot, `${TREE_SUITE}-${hash}`);
}

/**
 * Under an flock (held by the kernel, so a killed build never leaves it taken): if the tree is
 * still missing, remove builds a crash left behind, debootstrap into a temp dir beside it, then
 * rename it into place, so the tree's path only ever names a complete tree.
 */
const BUILD_SCRIPT = `set -e
tree=$1 suite=$2 packages=$3 mirror=$4
[ -d "$tree" ] && exit 0
rm -rf "$tree".build-*
build=$(mktemp -d "$tree".build-XXXXXX)
debootstrap --variant=minbase --include="$packages" "$suite" "$build" "$mirror" >"$build.log" 2>&1 || {
  status=$?; tail -n 20 "$build.log" >&2; rm -rf "$build" "$build.log"; exit $status
}
rm -f "$build.log"
mv "$build" "$tree"
`;

/** The cached tree's path, building it first when this machine has none yet (about 90 s). */
export async function ensureTree(cacheRoot: string = DEFAULT_TREE_CACHE): Promise<string> {
  const tree = treeDir(cacheRoot);
  if (existsSync(tree)) return tree;
  mkdirSync(cacheRoot, { recursive: true });
  const argv = ['flock', join(cacheRoot, '.build.lock'), 'sh', '-c', BUILD_SCRIPT, 'sh', tree, TREE_SUITE, TREE_PACKAGES.join(','), aptMirror()];
  const result = await run(argv, { timeoutMs: DEBOOTSTRAP_TIMEOUT_MS, allowFailure: true });
  if (result.code !== 0) throw new LabError(`cannot build the ${TREE_SUITE} tree ${tree} (debootstrap, exit ${result.code}): ${result.stderr.trim()}`);
  return tree;
}
