/**
 * A dhcp link: dnsmasq in the ISP namespace serves the ISP end of the gateway's veth; the gateway
 * runs ISC dhclient with the stock /sbin/dhclient-script inside its own mount namespace (its sshd's),
 * so the script writes the gateway's private /etc/resolv.conf and runs the hooks in the gateway's
 * /etc/dhcp/dhclient-exit-hooks.d/, as on a real gateway. Each dnsmasq hands out one address (the
 * gateway's in the current pool), so the lab knows every address before it is leased.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { intToIp } from './addressing.js';
import { LabError } from './errors.js';
import { readAddress, readDefaultRouters } from './links.js';
import { startDaemon, stopRole, type Daemon } from './processes.js';
import { pollUntil, run } from './run.js';
import { onGateway } from './sshd.js';
import { writeState, type LabGateway, type LabLink, type LabState, type LinkPool } from './state.js';

export const DEFAULT_LEASE_TIMEOUT_MS = 30_000;
const LEASE_SECONDS = 600;
/** dhclient-script's IF_METRIC (as ifupdown's `metric` sets it): metric 100 + link number, so each dhcp link's default route is installed beside the others. */
const METRIC_BASE = 100;
const DNSMASQ_START_TIMEOUT_MS = 10_000;
/** dnsmasq logs this once its DHCP socket is bound. */
const DNSMASQ_READY = /DHCP, IP range/;

export interface DhcpLease {
  address: string;
  router: string;
}

function dnsmasqFile(gateway: LabGateway, link: LabLink, extension: 'leases' | 'log' | 'pid'): string {
  return join(gateway.dir, `dnsmasq.${link.name}.${extension}`);
}

const dnsmasqRole = (gateway: LabGateway, link: LabLink): string => `dnsmasq ${gateway.name} ${link.name}`;
const dhclientRole = (gateway: LabGateway, link: LabLink): string => `dhclient ${gateway.name} ${link.name}`;

function netmask(prefixLength: number): string {
  return intToIp((0xffffffff << (32 - prefixLength)) >>> 0);
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function logSince(path: string, offset: number): string {
  try {
    return readFileSync(path, 'utf8').slice(offset);
  } catch {
    return '';
  }
}

function record(state: LabState, daemon: Daemon): void {
  state.processes.push(daemon.started);
  writeState(state);
}

/** (Re)starts the link's dnsmasq handing out `pool`; resolves once it serves DHCP. */
async function startDnsmasq(state: LabState, gateway: LabGateway, link: LabLink, pool: LinkPool): Promise<void> {
  await stopRole(state, dnsmasqRole(gateway, link));
  const logFile = dnsmasqFile(gateway, link, 'log');
  const offset = fileSize(logFile);
  const daemon = startDaemon(
    [
      'ip', 'netns', 'exec', link.ispNs, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--port=0',
      `--interface=${link.ispInterface}`, '--bind-interfaces',
      // Root keeps the lab dir (mode 0700) writable for the leases and the log.
      '--user=root', '--group=root',
      `--dhcp-range=${pool.gatewayAddress},${pool.gatewayAddress},${netmask(pool.prefixLength)},${LEASE_SECONDS}`,
      `--dhcp-option=option:router,${pool.nextHop}`,
      `--dhcp-option=option:dns-server,${state.server.address}`,
      // NAKs a gateway asking for its address in the old pool (INIT-REBOOT after a renumbering).
      '--dhcp-authoritative',
      // Nobody else can hold a gateway's address: the 3 s ping before each offer would only slow every lease.
      '--no-ping',
      `--dhcp-leasefile=${dnsmasqFile(gateway, link, 'leases')}`,
      `--pid-file=${dnsmasqFile(gateway, link, 'pid')}`,
      '--log-dhcp',
      `--log-facility=${logFile}`,
    ],
    logFile,
    dnsmasqRole(gateway, link),
  );
  record(state, daemon);
  const ready = await pollUntil(async () => (daemon.exitCode() !== undefined || DNSMASQ_READY.test(logSince(logFile, offset)) ? true : undefined), DNSMASQ_START_TIMEOUT_MS);
  if (ready === undefined || daemon.exitCode() !== undefined) {
    const why = daemon.exitCode() !== undefined ? `exited with ${daemon.exitCode()}` : `not serving after ${DNSMASQ_START_TIMEOUT_MS} ms`;
    throw new LabError(`${gateway.name} ${link.name}: dnsmasq ${why}: ${logSince(logFile, offset).trim()}`);
  }
}

/** (Re)starts the gateway's dhclient on the link, with the same lease file each time. */
async function startDhclient(state: LabState, gateway: LabGateway, link: LabLink): Promise<Daemon> {
  await stopRole(state, dhclientRole(gateway, link));
  const metric = METRIC_BASE + gateway.links.indexOf(link) + 1;
  const daemon = startDaemon(
    onGateway(state, gateway, [
      'sh', '-c', 'mkdir -p /var/lib/dhcp && exec "$@"', 'sh',
      'dhclient', '-4', '-d', '-v',
      // The gateway's private /var/lib and /run, where a Debian gateway keeps them.
      '-lf', `/var/lib/dhcp/dhclient.${link.interface}.leases`,
      '-pf', `/run/dhclient.${link.interface}.pid`,
      '-sf', '/sbin/dhclient-script',
      '-e', `IF_METRIC=${metric}`,
      link.interface,
    ]),
    join(gateway.dir, `dhclient.${link.name}.log`),
    dhclientRole(gateway, link),
  );
  record(state, daemon);
  return daemon;
}

/** Resolves once the gateway has pool's address on the link and dhclient's default route via its router. */
async function waitForLease(gateway: LabGateway, link: LabLink, pool: LinkPool, dhclient: Daemon, timeoutMs: number): Promise<DhcpLease> {
  const bound = await pollUntil(async () => {
    if (dhclient.exitCode() !== undefined) return false;
    const [address, routers] = await Promise.all([readAddress(gateway.ns, link.interface), readDefaultRouters(gateway.ns, link.interface)]);
    return address === pool.gatewayAddress && routers.includes(pool.nextHop) ? true : undefined;
  }, timeoutMs);
  if (bound !== true) {
    const log = logSince(join(gateway.dir, `dhclient.${link.name}.log`), 0).trim().split('\n').slice(-5).join(' | ');
    const why = bound === false ? `dhclient exited with ${dhclient.exitCode()}` : `no lease within ${timeoutMs} ms`;
    throw new LabError(`${gateway.name} ${link.name}: ${why} (expected ${pool.gatewayAddress} via ${pool.nextHop}); dhclient: ${log}`);
  }
  return { address: pool.gatewayAddress, router: pool.nextHop };
}

/** Starts the link's DHCP server and client; resolves with the first lease once it is bound. */
export async function startDhcpLink(state: LabState, gateway: LabGateway, link: LabLink, timeoutMs = DEFAULT_LEASE_TIMEOUT_MS): Promise<DhcpLease> {
  const pool = currentPool(gateway, link);
  await startDnsmasq(state, gateway, link, pool);
  return waitForLease(gateway, link, pool, await startDhclient(state, gateway, link), timeoutMs);
}

function currentPool(gateway: LabGateway, link: LabLink): LinkPool {
  const pool = link.pools?.[link.pool ?? 0];
  if (link.kind !== 'dhcp' || pool === undefined) throw new LabError(`${gateway.name} ${link.name} is not a dhcp link`);
  return pool;
}

/**
 * The ISP moves the gateway to pools[target]: its new router address (another subnet) and a host
 * route to the new lease go on the ISP's interface first, dnsmasq restarts with the new pool, and
 * dhclient restarts with the same lease file (INIT-REBOOT asks for the old address, dnsmasq NAKs,
 * the old address goes, a new lease follows). Once it is bound the old router address and route
 * leave the ISP, so a stale next hop really fails.
 */
export async function renumber(state: LabState, gateway: LabGateway, link: LabLink, target: number, timeoutMs: number): Promise<DhcpLease> {
  const from = currentPool(gateway, link);
  const to = link.pools?.[target];
  if (to === undefined) throw new LabError(`${gateway.name} ${link.name} has no pool ${target} (it has ${link.pools?.length ?? 0})`);
  if (to === from) throw new LabError(`${gateway.name} ${link.name} is already on pool ${target}`);
  const device = link.ispInterface;
  await run(['ip', '-n', link.ispNs, '-batch', '-'], {
    input: `addr replace ${to.nextHop}/${to.prefixLength} dev ${device} noprefixroute\nroute replace ${to.gatewayAddress}/32 dev ${device}\n`,
  });
  await startDnsmasq(state, gateway, link, to);
  const lease = await waitForLease(gateway, link, to, await startDhclient(state, gateway, link), timeoutMs);
  await run(['ip', '-n', link.ispNs, '-batch', '-'], {
    input: `route del ${from.gatewayAddress}/32 dev ${device}\naddr del ${from.nextHop}/${from.prefixLength} dev ${device}\n`,
  });
  Object.assign(link, { pool: target, gatewayAddress: to.gatewayAddress, nextHop: to.nextHop, prefixLength: to.prefixLength });
  writeState(state);
  return lease;
}
