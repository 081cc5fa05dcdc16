/** Real TCP and UDP traffic through the lab, counted at the server by the source address it sees. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LabError } from './errors.js';
import type { GatewayRef, Lab } from './lab.js';
import { linkBySource } from './links.js';
import { agentPath, askServer } from './server.js';
import { run } from './run.js';
import type { LabGateway } from './state.js';

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
  /** LAN source addresses (of the gateway's lanSources) to bind, in turn (default: the first). */
  sources?: readonly string[];
  /** tcp (default): a new connection each; udp: one datagram each, from a new socket, answered by one datagram. */
  protocol?: 'tcp' | 'udp';
  /** One of the server's tcpPorts or udpPorts (default: the first for the protocol). */
  port?: number;
  /** One of the server's serviceAddresses (default: the first). */
  destination?: string;
}

export interface ConnectionCounts {
  /** Answered connections by the source address the server saw. */
  bySource: Record<string, number>;
  /** The same by link name; every link of the gateway is present. */
  byLink: Record<string, number>;
  /** Answered connections whose source is none of the gateway's link addresses. */
  unmatched: number;
  /** Per LAN source bound (each one asked for is present): answered connections by the source the server saw. */
  byLanSource: Record<string, Record<string, number>>;
  /** Per LAN source bound: the same by link name (every link present; unmatched sources left out). */
  byLanSourceLink: Record<string, Record<string, number>>;
  /** Failed connections by error code (ECONNREFUSED, ETIMEDOUT: for UDP also no answer, ...). */
  errors: Record<string, number>;
  attempted: number;
  elapsedMs: number;
}

interface TrafficJob {
  host: string;
  port: number;
  protocol: 'tcp' | 'udp';
  sources: string[];
}

/** Checks the options against the lab, so a typo fails here instead of as connection errors. */
function trafficJob(lab: Lab, gateway: LabGateway, options: ConnectionCountOptions): TrafficJob {
  const { server } = lab.state;
  const protocol = options.protocol ?? 'tcp';
  const ports = protocol === 'udp' ? server.udpPorts : server.tcpPorts;
  const port = options.port ?? (ports[0] as number);
  if (!ports.includes(port)) throw new LabError(`the lab server answers ${protocol} on ports ${ports.join(', ')}, not ${port}`);
  const host = options.destination ?? server.address;
  if (!server.serviceAddresses.includes(host)) throw new LabError(`the lab server answers on ${server.serviceAddresses.join(', ')}, not ${host}`);
  const sources = [...(options.sources ?? gateway.lanSources.slice(0, 1))];
  if (sources.length === 0) throw new LabError('sources must name at least one LAN source');
  const foreign = sources.filter((source) => !gateway.lanSources.includes(source));
  if (foreign.length > 0) throw new LabError(`${gateway.name} has ${gateway.lanSources.length} LAN sources (LabGateway.lanSources); ${foreign.join(', ')} is not one`);
  return { host, port, protocol, sources };
}

/** Makes `count` new connections (TCP, or UDP exchanges) from the gateway's LAN client to the server. */
export async function countConnections(lab: Lab, ref: GatewayRef, count: number, options: ConnectionCountOptions = {}): Promise<ConnectionCounts> {
  const gateway = lab.gateway(ref);
  const client = lanClientOf(gateway);
  const deadlineMs = options.deadlineMs ?? 60_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 3_000;
  const job = { ...trafficJob(lab, gateway, options), count, concurrency: options.concurrency ?? 8, idleTimeoutMs, deadlineMs };
  const result = await run(['ip', 'netns', 'exec', client, process.execPath, agentPath(lab.state, 'trafficClient'), JSON.stringify(job)], {
    timeoutMs: deadlineMs + idleTimeoutMs + 10_000,
  });
  const report = JSON.parse(result.stdout) as Pick<ConnectionCounts, 'byLanSource' | 'errors' | 'attempted' | 'elapsedMs'>;
  const bySource: Record<string, number> = {};
  const byLink = emptyLinkCounts(gateway);
  const byLanSourceLink: Record<string, Record<string, number>> = {};
  let unmatched = 0;
  for (const [lanSource, seen] of Object.entries(report.byLanSource)) {
    const ownLinks = emptyLinkCounts(gateway);
    byLanSourceLink[lanSource] = ownLinks;
    for (const [source, connections] of Object.entries(seen)) {
      bySource[source] = (bySource[source] ?? 0) + connections;
      const link = linkBySource(gateway, source);
      if (link === undefined) {
        unmatched += connections;
        continue;
      }
      byLink[link.name] = (byLink[link.name] ?? 0) + connections;
      ownLinks[link.name] = (ownLinks[link.name] ?? 0) + connections;
    }
  }
  return { bySource, byLink, unmatched, byLanSource: report.byLanSource, byLanSourceLink, errors: report.errors, attempted: report.attempted, elapsedMs: report.elapsedMs };
}

function emptyLinkCounts(gateway: LabGateway): Record<string, number> {
  return Object.fromEntries(gateway.links.map((link) => [link.name, 0]));
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
