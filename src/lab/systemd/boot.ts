/** Booting systemd gateways, waiting until they answer, and powering them off for good. */
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import { startDaemon, stillOurs, terminate } from '../processes.js';
import { pollUntil, run } from '../run.js';
import type { GatewayContainer, LabGateway, LabState, StartedProcess } from '../state.js';
import { makeCgroups, pidsInCgroups, removeCgroups } from './cgroups.js';
import { configureRoot, containerInit, inContainer, mountRoot, POWER_FILES, requireContainer, supervisorArgv, supervisorRole, unmountRoot } from './container.js';

const BOOT_TIMEOUT_MS = 60_000;
const POWEROFF_TIMEOUT_MS = 10_000;
/** systemd's poweroff request: SIGRTMIN+4, glibc's SIGRTMIN being 34 (Node has no name for it). */
const SIGNAL_POWEROFF = 38;

/** One try at reading an SSH server's identification line. */
function sshBanner(address: string, port: number, timeoutMs = 1_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: timeoutMs });
    let received = '';
    const done = (banner: string | undefined): void => {
      socket.destroy();
      resolve(banner);
    };
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const line = received.split('\r\n', 1)[0] ?? '';
      if (received.includes('\n')) done(line.startsWith('SSH-') ? line : undefined);
    });
    socket.on('timeout', () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
  });
}

/** Resolves once the gateway's sshd sends its banner on the management address. */
export async function waitForSsh(state: LabState, gateway: LabGateway, timeoutMs = BOOT_TIMEOUT_MS): Promise<void> {
  const banner = await pollUntil(async () => {
    requireSupervisor(state, gateway);
    return sshBanner(gateway.mgmtAddress, state.ssh.port);
  }, timeoutMs);
  if (banner === undefined) throw new LabError(`${gateway.name}: no sshd answer on ${gateway.mgmtAddress}:${state.ssh.port} after ${timeoutMs} ms${consoleTail(gateway)}`);
}

function consoleTail(gateway: LabGateway): string {
  try {
    return `; console:\n${readFileSync(gateway.container?.consoleLog ?? '', 'utf8').trim().split('\n').slice(-15).join('\n')}`;
  } catch {
    return '';
  }
}

export function supervisorOf(state: LabState, gateway: LabGateway): StartedProcess | undefined {
  const started = state.processes.find((candidate) => candidate.role === supervisorRole(gateway));
  return started !== undefined && stillOurs([started]).length > 0 ? started : undefined;
}

function requireSupervisor(state: LabState, gateway: LabGateway): void {
  if (supervisorOf(state, gateway) === undefined) throw new LabError(`${gateway.name}: its container's supervisor exited${consoleTail(gateway)}`);
}

/**
 * Boots a gateway's container: its overlay, its files, its cgroups, its supervisor (recorded
 * before anything else can fail), then waits for systemd to finish booting and sshd to answer.
 * A degraded system (a unit failed) still counts as up: the gateway works, and tests show the unit.
 */
export async function bootContainer(
  state: LabState,
  gateway: LabGateway,
  container: GatewayContainer,
  authorizedKeys: string,
  record: (started: StartedProcess) => void,
): Promise<void> {
  await mountRoot(container);
  configureRoot(state, gateway, container, authorizedKeys);
  makeCgroups(container.cgroups);
  record(startDaemon(supervisorArgv(gateway, container), container.consoleLog, supervisorRole(gateway)).started);
  // systemctl fails with "Failed to connect to bus" until the manager's private socket exists.
  const init = await pollUntil(async () => {
    requireSupervisor(state, gateway);
    const pid = containerInit(container);
    return pid !== undefined && existsSync(`/proc/${pid}/root/run/systemd/private`) ? pid : undefined;
  }, BOOT_TIMEOUT_MS);
  if (init === undefined) throw new LabError(`${gateway.name}: systemd did not start in ${BOOT_TIMEOUT_MS} ms${consoleTail(gateway)}`);
  const verdict = (await run(inContainer(gateway, ['systemctl', 'is-system-running', '--wait']), { allowFailure: true, timeoutMs: BOOT_TIMEOUT_MS })).stdout.trim();
  if (verdict !== 'running' && verdict !== 'degraded') throw new LabError(`${gateway.name}: systemd finished booting as "${verdict}"${consoleTail(gateway)}`);
  await waitForSsh(state, gateway);
}

/**
 * Powers every container off, kills what stays, then unmounts the overlays and removes the
 * cgroups. A running supervisor ends by itself once its nspawn exits 0 (and reaps it); one waiting
 * for power after a reboot is stopped first. Works from state.json alone, after any failure.
 */
export async function removeContainers(state: LabState): Promise<void> {
  const gateways = state.gateways.filter((gateway) => gateway.container !== undefined);
  if (gateways.length === 0) return;
  const supervisors = (waiting: boolean): StartedProcess[] =>
    gateways.flatMap((gateway) => {
      const started = supervisorOf(state, gateway);
      return started !== undefined && existsSync(join(gateway.dir, POWER_FILES.off)) === waiting ? [started] : [];
    });
  await terminate(stillOurs(supervisors(true)));
  const containers = gateways.map(requireContainer);
  for (const container of containers) {
    const init = containerInit(container);
    try {
      if (init !== undefined) process.kill(init, SIGNAL_POWEROFF);
    } catch {
      // Gone meanwhile.
    }
  }
  const cgroups = containers.flatMap((container) => container.cgroups);
  await pollUntil(async () => (pidsInCgroups(cgroups).length === 0 ? true : undefined), POWEROFF_TIMEOUT_MS);
  await terminate(stillOurs(supervisors(false)));
  await terminate(pidsInCgroups(cgroups), 0);
  for (const container of containers) {
    await unmountRoot(container);
    removeCgroups(container.cgroups);
  }
}
