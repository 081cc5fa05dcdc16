/** Real TCP traffic through the lab, and cutting an ISP's upstream for one gateway. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LabError } from './errors.js';
import type { GatewayRef, Lab } from './lab.js';
import { findLink, linkBySource, type LinkRef } from './links.js';
import { agentPath, askServer } from './server.js';
import { run } from './run.js';
import type { LabGateway, LabLink } from './state.js';

function lanClientOf(gateway: LabGateway): string {
  if (gateway.lanClientNs === undefined) throw new LabError(`${gateway.name} has no LAN client (see the lanClients option)`);
  return gateway.lanClientNs;
}

/** Connections the server answered since it started (or since the last reset), by source address. */
export function serverCounts(lab: Lab): Promise<Record<string, number>> {
  return askServer(lab.state, 'counts');
}

/** Clears the server's counts; returns them as they were. */
export function resetServerCounts(lab: Lab): Promise<Record<string, number>> {
  return askServer(lab.state, 'reset');
}

export interface ConnectionCountOptions {
  /** Connections in flight at once (default 8). */
  concurrency?: number;
  /** A connection that neither connects nor answers for this long counts as ETIMEDOUT (default 3000). */
  idleTimeoutMs?: number;
  /** Stop opening connections after this long (default 60000). */
  deadlineMs?: number;
}

export interface ConnectionCounts {
  /** Answered connections by the source address the server saw. */
  bySource: Record<string, number>;
  /** The same by link name; every link of the gateway is present. */
  byLink: Record<string, number>;
  /** Answered connections whose source is none of the gateway's link addresses. */
  unmatched: number;
  /** Failed connections by error code (ECONNREFUSED, ETIMEDOUT, ...). */
  errors: Record<string, number>;
  attempted: number;
  elapsedMs: number;
}

/** Opens `count` new TCP connections from the gateway's LAN client to the server. */
export async function countConnections(lab: Lab, ref: GatewayRef, count: number, options: ConnectionCountOptions = {}): Promise<ConnectionCounts> {
  const gateway = lab.gateway(ref);
  const { state } = lab;
  const deadlineMs = options.deadlineMs ?? 60_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 3_000;
  const job = {
    host: state.server.address,
    port: state.server.port,
    count,
    concurrency: options.concurrency ?? 8,
    idleTimeoutMs,
    deadlineMs,
  };
  const result = await run(['ip', 'netns', 'exec', lanClientOf(gateway), process.execPath, agentPath(state, 'tcpClient'), JSON.stringify(job)], {
    timeoutMs: deadlineMs + idleTimeoutMs + 10_000,
  });
  const report = JSON.parse(result.stdout) as Omit<ConnectionCounts, 'byLink' | 'unmatched'>;
  const byLink = Object.fromEntries(gateway.links.map((link) => [link.name, 0]));
  let unmatched = 0;
  for (const [source, connections] of Object.entries(report.bySource)) {
    const link = linkBySource(gateway, source);
    if (link === undefined) unmatched += connections;
    else byLink[link.name] = (byLink[link.name] ?? 0) + connections;
  }
  return { ...report, byLink, unmatched };
}

/**
 * The ISP-side rules that cut this gateway off from the ISP's upstream: the ISP router still
 * answers on the gateway's segment (ARP, DHCP, ping to the next hop, the gateway's link stays up),
 * but forwards nothing from or to the gateway any more. Towards the gateway, every address the
 * link can have is cut, so a renumbering or a new p2p session during a cut stays cut (a rule
 * naming a p2p session's TUN device applies again when the device comes back). Priorities are
 * unique per gateway.
 */
function upstreamCutRules(lab: Lab, gateway: LabGateway, link: LabLink): { priority: number; selector: string }[] {
  const index = lab.gateways.indexOf(gateway) + 1;
  const isp = lab.state.isps.find((candidate) => candidate.ns === link.ispNs);
  if (isp === undefined) throw new LabError(`${gateway.name}: no ISP for ${link.name}`);
  const addresses = link.pools?.map((pool) => pool.gatewayAddress) ?? [link.gatewayAddress];
  return [
    { priority: 1000 + index, selector: `iif ${link.ispInterface}` },
    ...addresses.map((address, pool) => ({ priority: 2000 + 1000 * pool + index, selector: `iif ${isp.upstreamInterface} to ${address}` })),
  ];
}

async function presentRulePriorities(ns: string): Promise<Set<number>> {
  const { stdout } = await run(['ip', '-n', ns, '-json', 'rule', 'show']);
  return new Set((JSON.parse(stdout) as { priority: number }[]).map((rule) => rule.priority));
}

/** Cuts ISP `link`'s upstream for this gateway only (idempotent). Links count from 0, or by name. */
export async function cutUpstream(lab: Lab, gatewayRef: GatewayRef, linkRef: LinkRef): Promise<void> {
  const gateway = lab.gateway(gatewayRef);
  const link = findLink(gateway, linkRef);
  const present = await presentRulePriorities(link.ispNs);
  const missing = upstreamCutRules(lab, gateway, link).filter((rule) => !present.has(rule.priority));
  if (missing.length === 0) return;
  const batch = missing.map((rule) => `rule add pref ${rule.priority} ${rule.selector} blackhole`);
  await run(['ip', '-n', link.ispNs, '-batch', '-'], { input: `${batch.join('\n')}\n` });
}

/** Undoes cutUpstream (idempotent). */
export async function restoreUpstream(lab: Lab, gatewayRef: GatewayRef, linkRef: LinkRef): Promise<void> {
  const gateway = lab.gateway(gatewayRef);
  const link = findLink(gateway, linkRef);
  const present = await presentRulePriorities(link.ispNs);
  const batch = upstreamCutRules(lab, gateway, link)
    .filter((rule) => present.has(rule.priority))
    .map((rule) => `rule del pref ${rule.priority}`);
  if (batch.length > 0) await run(['ip', '-n', link.ispNs, '-batch', '-'], { input: `${batch.join('\n')}\n` });
}

export interface LongConnection {
  /** The address the server saw. */
  readonly source: string;
  /** The gateway link that address belongs to, if any. */
  readonly link: string | undefined;
  readonly pid: number;
  /** Sends a unique line and waits for its echo: true when the connection still carries data. */
  check(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

type LongConnectionEvent =
  | { event: 'connected'; source: string }
  | { event: 'echo'; data: string }
  | { event: 'error'; code: string }
  | { event: 'closed' };

/** Opens one connection from the gateway's LAN client to the server's echo port and keeps it open. */
export async function startLongConnection(lab: Lab, ref: GatewayRef, connectTimeoutMs = 5_000): Promise<LongConnection> {
  const gateway = lab.gateway(ref);
  const { state } = lab;
  const child = spawn(
    'ip',
    ['netns', 'exec', lanClientOf(gateway), process.execPath, agentPath(state, 'longConnection'), state.server.address, String(state.server.echoPort)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new LabError(`${gateway.name}: cannot start a long connection`);
  // Writing a check after the connection process died fails with EPIPE; check() reports false instead.
  child.stdin.on('error', () => undefined);
  const listeners = new Set<(event: LongConnectionEvent) => void>();
  let ended = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = JSON.parse(line) as LongConnectionEvent;
    if (event.event === 'closed' || event.event === 'error') ended = true;
    for (const listener of listeners) listener(event);
  });
  child.on('exit', () => {
    ended = true;
    for (const listener of listeners) listener({ event: 'closed' });
  });
  const waitFor = <T>(timeoutMs: number, pick: (event: LongConnectionEvent) => T | undefined): Promise<T | undefined> =>
    new Promise((resolve) => {
      const done = (value: T | undefined): void => {
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(value);
      };
      const listener = (event: LongConnectionEvent): void => {
        const value = pick(event);
        if (value !== undefined) done(value);
        else if (event.event === 'closed' || event.event === 'error') done(undefined);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      listeners.add(listener);
    });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const source = await waitFor(connectTimeoutMs, (event) => (event.event === 'connected' ? event.source : undefined));
  if (source === undefined) {
    child.kill('SIGKILL');
    throw new LabError(`${gateway.name}: long connection to ${state.server.address}:${state.server.echoPort} not established within ${connectTimeoutMs} ms`);
  }
  let sequence = 0;
  return {
    source,
    link: linkBySource(gateway, source)?.name,
    pid,
    async check(timeoutMs = 2_000) {
      if (ended) return false;
      const token = `check-${++sequence}`;
      const echoed = waitFor(timeoutMs, (event) => (event.event === 'echo' && event.data === token ? true : undefined));
      child.stdin.write(`${token}\n`);
      return (await echoed) === true;
    },
    async close() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
