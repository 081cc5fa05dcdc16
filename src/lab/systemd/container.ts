/**
 * A systemd gateway: a container (systemd-nspawn) booting the cached Debian tree through the
 * gateway's own overlay, in the gateway's network namespace, with sshd run by its systemd.
 */
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { LabError } from '../errors.js';
import { run } from '../run.js';
import { CONTAINER_SSHD_LOG, renderSshdConfig } from '../sshd.js';
import type { GatewayContainer, LabGateway, LabState } from '../state.js';
import { pidsInCgroups } from './cgroups.js';

/**
 * What lbprov's gateway work needs beyond nspawn's default set: with a network namespace given by
 * path, nspawn grants no CAP_NET_ADMIN (iptables, nft, ip rule/route, conntrack need it).
 */
export const CONTAINER_CAPABILITIES: readonly string[] = ['CAP_NET_ADMIN'];

/**
 * Units that slow or break a boot in a container whose network is configured from outside: consoles
 * and gettys (no terminal), waiting for networkd, periodic apt/dpkg/disk jobs, the pstore and
 * ext4 scrubbing of a real machine.
 */
export const MASKED_UNITS: readonly string[] = [
  'console-getty.service', 'container-getty@.service', 'getty@.service', 'systemd-networkd-wait-online.service',
  'apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'e2scrub_all.timer', 'e2scrub_reap.service',
  'fstrim.timer', 'systemd-pstore.service',
];

/** Inside the container. */
const HOST_KEY = '/etc/ssh/ssh_host_ed25519_key';
const AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';

export function nspawnArgv(gateway: LabGateway, container: GatewayContainer): string[] {
  return [
    // nspawn mounts /proc/sys read-only; lbprov writes /proc/sys/net (the container's own namespace's).
    'env', 'SYSTEMD_NSPAWN_API_VFS_WRITABLE=network',
    'systemd-nspawn', '--quiet', `--directory=${container.root}`, `--machine=${container.machine}`,
    // No systemd on the host to register with or to ask for a scope: the caller's cgroup is used.
    '--register=no', '--keep-unit',
    `--network-namespace-path=/run/netns/${gateway.ns}`,
    ...CONTAINER_CAPABILITIES.map((capability) => `--capability=${capability}`),
    // The container's files are its own: nspawn neither links its journal to the host nor edits its /etc.
    '--link-journal=no', '--resolv-conf=off', '--timezone=off',
    '--console=read-only', '--boot',
  ];
}

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === path);
}

export async function mountRoot(container: GatewayContainer): Promise<void> {
  for (const dir of [container.root, container.upper, container.work]) mkdirSync(dir, { recursive: true });
  await run(['mount', '-t', 'overlay', 'lbprov-lab', '-o', `lowerdir=${container.lower},upperdir=${container.upper},workdir=${container.work}`, container.root]);
}

export async function unmountRoot(container: GatewayContainer): Promise<void> {
  if (isMounted(container.root)) await run(['umount', container.root]);
}

function writeInRoot(container: GatewayContainer, path: string, content: string, mode = 0o644): void {
  const file = join(container.root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content, { mode });
}

/**
 * The gateway's own files, written through the overlay (so into its upper dir): its identity, the
 * lab's host key and authorized key for root, sshd's config as for other gateways (logging to a
 * file the lab reads), and the masked units.
 */
export function configureRoot(state: LabState, gateway: LabGateway, container: GatewayContainer, authorizedKeys: string): void {
  writeInRoot(container, '/etc/hostname', `${container.machine}\n`);
  writeInRoot(container, '/etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  copyFileSync(gateway.hostKeyFile, join(container.root, HOST_KEY));
  copyFileSync(`${gateway.hostKeyFile}.pub`, join(container.root, `${HOST_KEY}.pub`));
  writeInRoot(container, AUTHORIZED_KEYS, readFileSync(authorizedKeys, 'utf8'), 0o600);
  writeInRoot(container, '/etc/ssh/sshd_config', renderSshdConfig(gateway, { hostKey: HOST_KEY, pidFile: '/run/sshd.pid', authorizedKeys: AUTHORIZED_KEYS }, state.ssh.port));
  // ssh.service passes SSHD_OPTS from here: "Connection from" lines go to a file sshdConnections reads.
  writeInRoot(container, '/etc/default/ssh', `SSHD_OPTS="-E ${CONTAINER_SSHD_LOG}"\n`);
  mkdirSync(join(container.root, '/etc/systemd/system'), { recursive: true });
  for (const unit of MASKED_UNITS) symlinkSync('/dev/null', join(container.root, '/etc/systemd/system', unit));
}

/**
 * The gateway's supervisor: joins the container's cgroups, then runs nspawn (its remaining
 * arguments) again after every reboot. nspawn exits with 133 for a reboot from inside; after a
 * power cut (the lab writes power-cut, then kills the container) its status is whatever a killed
 * container gives. Either way it writes powered-off and waits for power-on, which the lab writes
 * once it has rebuilt the gateway's network; any other exit ends the supervisor.
 */
const SUPERVISOR_SCRIPT = `gw=$1
shift
while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; done
shift
while :; do
  "$@"
  status=$?
  echo "lbprov-lab: nspawn exited with $status"
  if [ "$status" != 133 ] && [ ! -e "$gw/power-cut" ]; then exit "$status"; fi
  rm -f "$gw/power-cut"
  : > "$gw/powered-off"
  while [ ! -e "$gw/power-on" ]; do sleep 0.05; done
  rm -f "$gw/power-on" "$gw/powered-off"
done
`;

export const POWER_FILES = { cut: 'power-cut', off: 'powered-off', on: 'power-on' } as const;

export function supervisorRole(gateway: LabGateway): string {
  return `supervisor ${gateway.name}`;
}

export function supervisorArgv(gateway: LabGateway, container: GatewayContainer): string[] {
  return ['sh', '-c', SUPERVISOR_SCRIPT, 'sh', gateway.dir, ...container.cgroups, '--', ...nspawnArgv(gateway, container)];
}

/** The container's PID 1 (as the host sees it): the process of its cgroups that is pid 1 in its own pid namespace. */
export function containerInit(container: GatewayContainer): number | undefined {
  return pidsInCgroups(container.cgroups).find((pid) => {
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.split(/\s+/) ?? [];
      return nspid.length > 1 && nspid.at(-1) === '1';
    } catch {
      return false;
    }
  });
}

export function requireContainer(gateway: LabGateway): GatewayContainer {
  if (gateway.container === undefined) throw new LabError(`${gateway.name} is not a systemd gateway (the lab was made with init none)`);
  return gateway.container;
}

/** argv run inside the container: every namespace of its PID 1, its root and working directory. */
export function inContainer(gateway: LabGateway, argv: readonly string[]): string[] {
  const init = containerInit(requireContainer(gateway));
  if (init === undefined) throw new LabError(`${gateway.name}: its container is not running`);
  return ['nsenter', `--target=${init}`, '--all', '--root', '--wd', '--', ...argv];
}
