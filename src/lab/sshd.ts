/** Each lab gateway's OpenSSH sshd: its config, its private filesystem view, starting it. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './errors.js';
import { processStartTime, stillOurs } from './processes.js';
import type { LabGateway, LabState, StartedProcess } from './state.js';

export const SSHD = '/usr/sbin/sshd';

/** Where the sshd of a gateway finds its files (the lab dir's, or a container's own). */
export interface SshdFiles {
  hostKey: string;
  pidFile: string;
  authorizedKeys: string;
}

export function renderSshdConfig(gateway: LabGateway, files: SshdFiles, port: number): string {
  return [
    `# lbprov lab gateway ${gateway.name} (${gateway.ns})`,
    `ListenAddress ${gateway.mgmtAddress}`,
    `Port ${port}`,
    `HostKey ${files.hostKey}`,
    `PidFile ${files.pidFile}`,
    `AuthorizedKeysFile ${files.authorizedKeys}`,
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    // A fleet run opens one connection per gateway at once, plus retries.
    'MaxStartups 100:30:200',
    'MaxSessions 20',
    'PrintMotd no',
    // "Connection from ..." for every connection: tests count what reached the gateway.
    'LogLevel VERBOSE',
    'PrintLastLog no',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

/** Directories lbprov writes that each gateway sees privately: overlays keep the host's content visible. */
const OVERLAID = ['/etc', '/var/lib', '/var/log'] as const;

/**
 * Runs inside the gateway's network namespace and a new mount namespace whose mounts stay private
 * (nothing leaks to the host or other gateways). Arguments: the gateway's lab dir, then pairs of
 * (directory, overlay layer dir). Processes later started over SSH (lbprov's monitor) inherit this
 * view. A fresh /run also gives each gateway its own xtables lock; an empty ~/.bashrc saves the
 * pyenv init that root's bashrc runs for every SSH command.
 */
const LAUNCH_SCRIPT = `set -e
gw=$1
shift
while [ $# -gt 0 ]; do
  mount -t overlay lbprov-lab -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$1"
  shift 2
done
mount -t tmpfs -o mode=0755 lbprov-lab /run
mkdir -m 0755 /run/sshd
if [ -e /root/.bashrc ]; then mount --bind "$gw/empty-bashrc" /root/.bashrc; fi
exec ${SSHD} -D -e -f "$gw/sshd_config"
`;

function overlayLayer(gateway: LabGateway, target: string): string {
  return join(gateway.dir, `fs${target.replaceAll('/', '_')}`);
}

export function prepareGatewayFilesystem(gateway: LabGateway): void {
  for (const target of OVERLAID) {
    const layer = overlayLayer(gateway, target);
    mkdirSync(join(layer, 'upper'), { recursive: true });
    mkdirSync(join(layer, 'work'), { recursive: true });
  }
  writeFileSync(join(gateway.dir, 'empty-bashrc'), '');
}

/**
 * Where a file the gateway wrote under `path` lands in the lab dir: for a systemd gateway, anywhere
 * in its overlay's upper dir (files it has not written are the cached tree's); otherwise in /etc,
 * /var/lib or /var/log.
 */
export function gatewayFileOnHost(gateway: LabGateway, path: string): string {
  if (gateway.container !== undefined) {
    if (!path.startsWith('/')) throw new LabError(`${gateway.name}: ${path} is not an absolute path`);
    return join(gateway.container.upper, path);
  }
  const target = OVERLAID.find((dir) => path === dir || path.startsWith(`${dir}/`));
  if (target === undefined) throw new LabError(`${path} is not under ${OVERLAID.join(', ')}`);
  return join(overlayLayer(gateway, target), 'upper', path.slice(target.length));
}

/** A systemd gateway's sshd writes its log (sshd -E) under the container's /var/log. */
export const CONTAINER_SSHD_LOG = '/var/log/sshd.log';

export function sshdLogPath(gateway: LabGateway): string {
  return gateway.container !== undefined ? gatewayFileOnHost(gateway, CONTAINER_SSHD_LOG) : join(gateway.dir, 'sshd.log');
}

/** TCP connections the gateway's sshd has seen since it started (a systemd gateway's: since the lab was made, reboots included). */
export function sshdConnections(gateway: LabGateway): number {
  return (readFileSync(sshdLogPath(gateway), 'utf8').match(/^Connection from /gm) ?? []).length;
}

/** Starts sshd and resolves once it listens (it writes its PidFile after binding). */
export async function startSshd(gateway: LabGateway, timeoutMs = 15_000): Promise<StartedProcess> {
  const logFile = sshdLogPath(gateway);
  const log = openSync(logFile, 'a');
  let exited: number | null | undefined;
  let child;
  try {
    child = spawn(
      'ip',
      ['netns', 'exec', gateway.ns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', LAUNCH_SCRIPT, 'sh', gateway.dir,
        ...OVERLAID.flatMap((target) => [target, overlayLayer(gateway, target)])],
      { detached: true, stdio: ['ignore', log, log] },
    );
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new LabError(`${gateway.name}: cannot start sshd`);
  child.on('exit', (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(gateway.sshdPidFile)) {
    if (exited !== undefined || Date.now() > deadline) {
      const why = exited !== undefined ? `exited with ${exited}` : `not listening after ${timeoutMs} ms`;
      throw new LabError(`${gateway.name}: sshd ${why}: ${readFileSync(logFile, 'utf8').trim()}`);
    }
    await sleep(20);
  }
  return { pid, startTime: processStartTime(pid) ?? '', role: `sshd ${gateway.name}` };
}

/**
 * argv prefixed to run as a process started over SSH would: in the gateway's network namespace and
 * the private mount namespace its sshd holds (nsenter execs argv: the pid stays the program's).
 */
export function onGateway(state: LabState, gateway: LabGateway, argv: readonly string[]): string[] {
  const sshd = state.processes.find((started) => started.role === `sshd ${gateway.name}`);
  if (gateway.container !== undefined) throw new LabError(`${gateway.name} is a systemd gateway: run commands in its container (Lab.execOnGateway)`);
  const [pid] = sshd !== undefined ? stillOurs([sshd]) : [];
  if (pid === undefined) throw new LabError(`${gateway.name}: its sshd is not running`);
  return ['nsenter', `--target=${pid}`, '--mount', '--net', '--', ...argv];
}
