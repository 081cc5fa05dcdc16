/**
 * A p2p link, PPPoE-like without PPP (this kernel has none): a session is two socat relays joining
 * a TUN device on the gateway (ppp<k>: POINTOPOINT, NOARP) and one in the ISP namespace over UDP on
 * the link's carrier veth. The address pair is set as IPCP would set it, and the gateway's own
 * /etc/ppp/ip-up.d and ip-down.d scripts run as pppd runs them. The session's devices exist only
 * while its relays run.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.js';
import { deviceExists, readAddress } from './links.js';
import { startDaemon, stopRole, type Daemon } from './processes.js';
import { pollUntil, run } from './run.js';
import { onGateway } from './sshd.js';
import { writeState, type Carrier, type LabGateway, type LabLink, type LabState, type LinkPool } from './state.js';

export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** PPPoE's MTU: 1500 minus its 8-byte header. */
const SESSION_MTU = 1492;
const CARRIER_PORT = 6000;
/** Larger than a session packet, so socat relays each one whole. */
const RELAY_BUFFER = 2048;
const DEVICE_GONE_TIMEOUT_MS = 2_000;

export interface P2pSession {
  address: string;
  peer: string;
}

/**
 * Runs the scripts of $1 (ip-up.d or ip-down.d) as Debian's /etc/ppp/ip-up does under pppd: a
 * cleared environment with pppd's variables and PPP_*, and pppd's arguments (interface, tty,
 * speed, local address, peer, ipparam). pppd ignores the scripts' exit status; so does the lab.
 */
const PPP_HOOKS_SCRIPT = `dir=$1
shift
[ -d "$dir" ] || exit 0
exec env -i PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin \\
  IFNAME="$1" DEVICE="$2" SPEED="$3" IPLOCAL="$4" IPREMOTE="$5" IPPARAM="$6" \\
  PPP_IFACE="$1" PPP_TTY="$2" PPP_TTYNAME="$2" PPP_SPEED="$3" PPP_LOCAL="$4" PPP_REMOTE="$5" PPP_IPPARAM="$6" \\
  run-parts --arg="$1" --arg="$2" --arg="$3" --arg="$4" --arg="$5" --arg="$6" "$dir"
`;

const relayRole = (gateway: LabGateway, link: LabLink, end: 'gateway' | 'isp'): string => `relay ${gateway.name} ${link.name} ${end}`;

function carrierOf(gateway: LabGateway, link: LabLink): Carrier {
  if (link.kind !== 'p2p' || link.carrier === undefined) throw new LabError(`${gateway.name} ${link.name} is not a p2p link`);
  return link.carrier;
}

function relayArgv(tunDevice: string, local: string, remote: string): string[] {
  // UDP-DATAGRAM is unconnected: a relay whose peer is not there yet keeps running instead of failing on ECONNREFUSED.
  return ['socat', '-b', String(RELAY_BUFFER), `TUN,tun-type=tun,tun-name=${tunDevice},iff-no-pi`, `UDP-DATAGRAM:${remote}:${CARRIER_PORT},bind=${local}:${CARRIER_PORT}`];
}

async function runHooks(state: LabState, gateway: LabGateway, link: LabLink, phase: 'ip-up' | 'ip-down', session: P2pSession): Promise<void> {
  const carrier = carrierOf(gateway, link);
  const result = await run(
    onGateway(state, gateway, ['sh', '-c', PPP_HOOKS_SCRIPT, 'sh', `/etc/ppp/${phase}.d`, link.interface, carrier.interface, '0', session.address, session.peer, '']),
    { allowFailure: true },
  );
  const output = `${result.stdout}${result.stderr}`;
  if (output !== '' || result.code !== 0) {
    appendFileSync(join(gateway.dir, `ppp.${link.name}.hooks.log`), `${new Date().toISOString()} ${phase} exit ${result.code}\n${output}`);
  }
}

function startRelay(state: LabState, gateway: LabGateway, link: LabLink, end: 'gateway' | 'isp'): Daemon {
  const carrier = carrierOf(gateway, link);
  const argv = end === 'gateway'
    ? onGateway(state, gateway, relayArgv(link.interface, carrier.address, carrier.ispAddress))
    : ['ip', 'netns', 'exec', link.ispNs, ...relayArgv(link.ispInterface, carrier.ispAddress, carrier.address)];
  const daemon = startDaemon(argv, join(gateway.dir, `relay.${link.name}.${end}.log`), relayRole(gateway, link, end));
  state.processes.push(daemon.started);
  writeState(state);
  return daemon;
}

/** Brings a session up with the addresses of pools[poolIndex]; resolves once ppp<k> carries them. */
export async function connect(state: LabState, gateway: LabGateway, link: LabLink, poolIndex: number, timeoutMs = DEFAULT_SESSION_TIMEOUT_MS): Promise<P2pSession> {
  carrierOf(gateway, link);
  if (link.connected === true) throw new LabError(`${gateway.name} ${link.name}: a session is already up (drop it first)`);
  const pool: LinkPool | undefined = link.pools?.[poolIndex];
  if (pool === undefined) throw new LabError(`${gateway.name} ${link.name} has no pool ${poolIndex}`);
  const session = { address: pool.gatewayAddress, peer: pool.nextHop };
  try {
    await startRelays(state, gateway, link, timeoutMs);
    await configureSession(gateway, link, session);
  } catch (error) {
    // A half-made session would keep the TUN names taken: the next connect could not make them.
    await stopRelays(state, gateway, link);
    throw error;
  }
  Object.assign(link, { pool: poolIndex, gatewayAddress: session.address, nextHop: session.peer, connected: true });
  writeState(state);
  await runHooks(state, gateway, link, 'ip-up', session);
  return session;
}

/** Starts both relays; resolves once both TUN devices exist. */
async function startRelays(state: LabState, gateway: LabGateway, link: LabLink, timeoutMs: number): Promise<void> {
  const relays = [startRelay(state, gateway, link, 'isp'), startRelay(state, gateway, link, 'gateway')];
  const ready = await pollUntil(async () => {
    if (relays.some((relay) => relay.exitCode() !== undefined)) return false;
    const [isp, own] = await Promise.all([deviceExists(link.ispNs, link.ispInterface), deviceExists(gateway.ns, link.interface)]);
    return isp && own ? true : undefined;
  }, timeoutMs);
  if (ready !== true) {
    throw new LabError(`${gateway.name} ${link.name}: session relays ${ready === false ? 'exited' : `made no TUN devices within ${timeoutMs} ms`} (logs in ${gateway.dir})`);
  }
}

/** What IPCP does: each end gets its address and the other's as peer, then the link goes up. */
async function configureSession(gateway: LabGateway, link: LabLink, session: P2pSession): Promise<void> {
  await run(['ip', '-n', link.ispNs, '-batch', '-'], {
    input: `addr add ${session.peer} peer ${session.address} dev ${link.ispInterface}\nlink set ${link.ispInterface} mtu ${SESSION_MTU} up\n`,
  });
  await run(['ip', '-n', gateway.ns, '-batch', '-'], {
    input: [
      `addr add ${session.address} peer ${session.peer} dev ${link.interface}`,
      `link set ${link.interface} mtu ${SESSION_MTU} up`,
      // Link 1 is the gateway's ISP before lbprov: pppd's defaultroute.
      ...(gateway.links[0] === link ? [`route replace default dev ${link.interface}`] : []),
      '',
    ].join('\n'),
  });
  const address = await readAddress(gateway.ns, link.interface);
  if (address !== session.address) throw new LabError(`${gateway.name} ${link.name}: ${link.interface} has ${address ?? 'no address'}, expected ${session.address}`);
}

async function stopRelays(state: LabState, gateway: LabGateway, link: LabLink): Promise<void> {
  await stopRole(state, relayRole(gateway, link, 'gateway'));
  await stopRole(state, relayRole(gateway, link, 'isp'));
  writeState(state);
}

/**
 * Ends the session as pppd does (interface down, addresses cleared, ip-down scripts), then stops
 * both relays, which removes ppp<k> and the ISP's end. Nothing to do without a session.
 */
export async function drop(state: LabState, gateway: LabGateway, link: LabLink): Promise<void> {
  carrierOf(gateway, link);
  if (link.connected !== true) return;
  // The device is already gone if a relay died: then there is nothing to take down.
  await run(['ip', '-n', gateway.ns, '-batch', '-'], { input: `link set ${link.interface} down\naddr flush dev ${link.interface}\n`, allowFailure: true });
  await runHooks(state, gateway, link, 'ip-down', { address: link.gatewayAddress, peer: link.nextHop });
  await stopRelays(state, gateway, link);
  link.connected = false;
  writeState(state);
  const gone = await pollUntil(async () => ((await deviceExists(gateway.ns, link.interface)) ? undefined : true), DEVICE_GONE_TIMEOUT_MS);
  if (gone === undefined) throw new LabError(`${gateway.name} ${link.name}: ${link.interface} still exists after its relay stopped`);
}
