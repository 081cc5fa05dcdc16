/**
 * Rebooting a systemd gateway like a real machine: its systemd shuts down (or, hard, the container
 * is killed like a power cut), its kernel network state is lost (the namespace and its veths are
 * made again as at lab creation, nothing lbprov installed survives), then it boots again.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import type { GatewayRef, Lab } from '../lab.js';
import { rebuildGatewayNetwork } from '../network.js';
import { pollUntil, run } from '../run.js';
import type { LabGateway, LabState } from '../state.js';
import { supervisorOf, waitForSsh } from './boot.js';
import { containerInit, inContainer, POWER_FILES, requireContainer } from './container.js';

export interface RebootOptions {
  /** Kill the container instead of a clean shutdown (a power cut). */
  hard?: boolean;
}

const SHUTDOWN_TIMEOUT_MS = 60_000;

/** Asks for the shutdown and resolves once the container is gone and its supervisor waits for power. */
async function powerOff(state: LabState, gateway: LabGateway, hard: boolean): Promise<void> {
  const off = join(gateway.dir, POWER_FILES.off);
  // Rebooted from inside (systemctl reboot over ssh): already off, waiting for its network.
  if (existsSync(off)) return;
  if (hard) {
    const init = containerInit(requireContainer(gateway));
    if (init === undefined) throw new LabError(`${gateway.name}: its container is not running`);
    writeFileSync(join(gateway.dir, POWER_FILES.cut), '');
    // Killing a pid namespace's init kills every process in it at once.
    process.kill(init, 'SIGKILL');
  } else {
    await run(inContainer(gateway, ['systemctl', 'reboot']));
  }
  const down = await pollUntil(async () => {
    if (supervisorOf(state, gateway) === undefined) throw new LabError(`${gateway.name}: its supervisor exited instead of rebooting the container`);
    return existsSync(off) ? true : undefined;
  }, SHUTDOWN_TIMEOUT_MS);
  if (down === undefined) throw new LabError(`${gateway.name}: still not shut down ${SHUTDOWN_TIMEOUT_MS} ms after the reboot request`);
}

/**
 * Reboots one systemd gateway and resolves once its sshd answers again; `ms` is from the request to
 * that answer.
 */
export async function rebootGateway(lab: Lab, ref: GatewayRef, options: RebootOptions = {}): Promise<{ ms: number }> {
  const { state } = lab;
  const gateway = lab.gateway(ref);
  requireContainer(gateway);
  if (supervisorOf(state, gateway) === undefined) throw new LabError(`${gateway.name}: its container's supervisor is not running`);
  const started = performance.now();
  await powerOff(state, gateway, options.hard === true);
  await rebuildGatewayNetwork(state, gateway);
  writeFileSync(join(gateway.dir, POWER_FILES.on), '');
  await waitForSsh(state, gateway);
  return { ms: Math.round(performance.now() - started) };
}
