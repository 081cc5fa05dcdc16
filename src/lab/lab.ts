/**
 * The local lab: gateways in network namespaces, each running a real OpenSSH sshd reachable from
 * the root namespace, behind two or more ISP routers, in front of an "internet" server.
 * create.ts builds one; see layout.ts for names, addressing.ts for addresses, network.ts for the
 * topology, dhcp.ts and p2p.ts for dynamic links (dynamic.ts changes them at run time).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { releaseLocks } from './allocator.js';
import { LabError } from './errors.js';
import { releaseNeighbourTable } from './neighbours.js';
import { inventoryHeader } from './inventory.js';
import { pidsInNamespaces, stillOurs, terminate } from './processes.js';
import { run, type RunOptions, type RunResult } from './run.js';
import { onGateway } from './sshd.js';
import { removeContainers } from './systemd/boot.js';
import { inContainer } from './systemd/container.js';
import { writeState, type LabGateway, type LabState } from './state.js';

export type GatewayRef = number | string;

const ROOT_LINK_CLEANUP_MS = 5_000;

export class Lab {
  constructor(readonly state: LabState) {}

  get gateways(): readonly LabGateway[] {
    return this.state.gateways;
  }

  get dir(): string {
    return this.state.dir;
  }

  get stateFile(): string {
    return this.state.stateFile;
  }

  get inventoryPath(): string {
    return this.state.inventoryPath;
  }

  /** By index (from 0) or name (gw1). */
  gateway(ref: GatewayRef): LabGateway {
    const gateway = typeof ref === 'number' ? this.state.gateways[ref] : this.state.gateways.find((candidate) => candidate.name === ref);
    if (gateway === undefined) throw new LabError(`lab ${this.state.prefix} has no gateway ${ref}`);
    return gateway;
  }

  save(): void {
    writeState(this.state);
  }

  /** Runs argv in one of the lab's network namespaces (host filesystem). */
  exec(ns: string, argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    if (!this.state.namespaces.includes(ns)) throw new LabError(`${ns} is not a namespace of lab ${this.state.prefix}`);
    return run(['ip', 'netns', 'exec', ns, ...argv], options);
  }

  /**
   * Runs argv as a process started over SSH would: the gateway's network namespace and private
   * files; on a systemd gateway, inside its container (every namespace of its PID 1, its root).
   */
  execOnGateway(ref: GatewayRef, argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    const gateway = this.gateway(ref);
    return run(gateway.container !== undefined ? inContainer(gateway, argv) : onGateway(this.state, gateway, argv), options);
  }

  /**
   * Removes everything the lab made: its containers (with their mounts and cgroups), its processes
   * (started by it, or running in its namespaces), root-namespace interfaces, namespaces, files and
   * locks. Safe to repeat; keeps state.json when something could not be removed, so it can be retried.
   */
  async destroy(): Promise<void> {
    const { state } = this;
    await removeContainers(state);
    await terminate([...stillOurs(state.processes), ...pidsInNamespaces(state.namespaces)]);
    const existingLinks = (): string[] => state.rootLinks.filter((link) => existsSync(`/sys/class/net/${link}`));
    const existingNamespaces = (): string[] => state.namespaces.filter((ns) => existsSync(`/run/netns/${ns}`));
    const namespaces = existingNamespaces();
    if (namespaces.length > 0) {
      await run(['ip', '-force', '-batch', '-'], { input: namespaces.map((ns) => `netns del ${ns}\n`).join(''), allowFailure: true });
    }
    // The kernel removes a dead namespace's veths (and so their root ends) in batches, far faster
    // than deleting each link (one RCU grace period each); only stragglers are deleted by name.
    const deadline = Date.now() + ROOT_LINK_CLEANUP_MS;
    while (existingLinks().length > 0 && Date.now() < deadline) await sleep(25);
    const stragglers = existingLinks();
    if (stragglers.length > 0) {
      await run(['ip', '-force', '-batch', '-'], { input: stragglers.map((link) => `link del ${link}\n`).join(''), allowFailure: true });
    }
    const left = [...existingLinks(), ...existingNamespaces()];
    if (left.length > 0) throw new LabError(`lab ${state.prefix}: could not remove ${left.join(', ')} (state kept in ${state.stateFile})`);
    if (isOurInventory(state)) rmSync(state.inventoryPath, { force: true });
    rmSync(state.dir, { recursive: true, force: true });
    if (state.neighbourClaim !== undefined) releaseNeighbourTable(state.neighbourClaim);
    releaseLocks(state.locks, state.stateFile);
  }
}

function isOurInventory(state: LabState): boolean {
  try {
    return readFileSync(state.inventoryPath, 'utf8').split('\n', 1)[0] === inventoryHeader(state);
  } catch {
    return false;
  }
}

export function loadLab(stateFile: string): Lab {
  let state: LabState;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as LabState;
  } catch (error) {
    throw new LabError(`cannot read lab state ${stateFile}: ${(error as Error).message}`);
  }
  if (state.version !== 1) throw new LabError(`${stateFile}: unknown lab state version ${String(state.version)}`);
  return new Lab(state);
}
