/**
 * Building the lab's namespaces and links: one `ip -batch` in the root namespace creates every
 * namespace and veth (each veth is created with its ends directly in their namespaces), then one
 * short process per namespace sets its sysctls, addresses and routes.
 *
 * Per gateway: mgmt0 <-> <prefix>m<i> (root), lan0 <-> eth0 (its LAN client, or a parking
 * namespace; with several LAN sources both ends are on the second LAN subnet too), wan<k> <-> gw<i> in ISP k (static and dhcp links), or carrier<k> <-> gw<i>-carrier for
 * a p2p link, whose session devices (ppp<k>, gw<i>-ppp) its relays make later (p2p.ts). Each ISP
 * router has one upstream to the server, which routes both of a dynamic ISP's pools back to it.
 * ISPs filter customer sources strictly (rp_filter=1), so a connection leaving by the wrong link
 * with another link's (or the LAN's) address fails, as it would at a real ISP.
 */
import pLimit from 'p-limit';
import { LAN_PREFIX_LENGTH, upstream, upstreamBlock } from './addressing.js';
import { run } from './run.js';
import type { LabGateway, LabState } from './state.js';

const MGMT_INTERFACE = 'mgmt0';
const LAN_CLIENT_INTERFACE = 'eth0';
const SETUP_CONCURRENCY = 3;
/** The relay's UDP carrier: room for a 1492-byte session packet plus its IP and UDP headers. */
export const CARRIER_MTU = 1520;

/** $1 interface to masquerade on (empty: none), then sysctl settings path=value, in order. */
const SETUP_SCRIPT = `set -e
masquerade=$1
shift
for setting in "$@"; do echo "\${setting#*=}" > "/proc/sys/\${setting%%=*}"; done
ip -batch -
if [ -n "$masquerade" ]; then iptables -w -t nat -A POSTROUTING -o "$masquerade" -j MASQUERADE; fi
`;

export interface NamespaceSetup {
  ns: string;
  /** path=value under /proc/sys, applied in order (ip_forward resets every interface's forwarding). */
  sysctls: string[];
  masqueradeInterface: string;
  batch: string[];
}

function lanPeer(state: LabState, gateway: LabGateway): { ns: string; name: string } {
  return gateway.lanClientNs !== undefined
    ? { ns: gateway.lanClientNs, name: LAN_CLIENT_INTERFACE }
    : { ns: state.parkingNs as string, name: gateway.name };
}

/** The LAN client's addresses after lanSources[0], with the second LAN's prefix. */
function secondLanSources(gateway: LabGateway): string[] {
  const { secondLan } = gateway;
  return secondLan !== undefined ? gateway.lanSources.slice(1).map((address) => `${address}/${secondLan.prefixLength}`) : [];
}

/** The veths of one gateway (mgmt, ISP links, LAN), made in the root namespace with each end in its namespace. */
function gatewayRootLines(state: LabState, gateway: LabGateway): string[] {
  const lines = [
    `link add ${gateway.rootLink} type veth peer name ${MGMT_INTERFACE} netns ${gateway.ns}`,
    `addr add ${gateway.rootAddress}/31 dev ${gateway.rootLink}`,
    `link set ${gateway.rootLink} up`,
  ];
  for (const link of gateway.links) {
    // A p2p link's ppp<k> and its ISP end are TUN devices its relays create; only the carrier is a veth.
    const [own, isp] = link.carrier !== undefined ? [link.carrier.interface, link.carrier.ispInterface] : [link.interface, link.ispInterface];
    lines.push(`link add ${own} netns ${gateway.ns} type veth peer name ${isp} netns ${link.ispNs}`);
  }
  const peer = lanPeer(state, gateway);
  lines.push(`link add ${gateway.lanInterface} netns ${gateway.ns} type veth peer name ${peer.name} netns ${peer.ns}`);
  return lines;
}

export function rootBatch(state: LabState): string[] {
  const lines = state.namespaces.map((ns) => `netns add ${ns}`);
  for (const isp of state.isps) {
    lines.push(`link add ${isp.upstreamInterface} netns ${isp.ns} type veth peer name ${isp.name} netns ${state.server.ns}`);
  }
  return [...lines, ...state.gateways.flatMap((gateway) => gatewayRootLines(state, gateway))];
}

/** The ISP routers and the server: made once, untouched when a gateway is rebuilt. */
function sharedSetups(state: LabState): NamespaceSetup[] {
  const setups: NamespaceSetup[] = state.isps.map((isp, index) => {
    const ends = upstream(index + 1);
    return {
      ns: isp.ns,
      // Strict reverse-path filtering; ARP answered only for the interface's own addresses, so a
      // router address a gateway was renumbered away from stops answering even if another gateway still uses it.
      sysctls: ['net/ipv4/ip_forward=1', 'net/ipv4/conf/all/rp_filter=1', 'net/ipv4/conf/all/arp_ignore=1'],
      masqueradeInterface: '',
      batch: [
        'link set lo up',
        `link set ${isp.upstreamInterface} up`,
        `addr add ${ends.isp}/31 dev ${isp.upstreamInterface}`,
        `route add default via ${ends.server} dev ${isp.upstreamInterface}`,
        // Other ISPs' upstreams (probe targets) are reachable only through their own ISP.
        `route add unreachable ${upstreamBlock}`,
      ],
    };
  });

  const serverBatch = ['link set lo up', ...state.server.serviceAddresses.map((address) => `addr add ${address}/32 dev lo`)];
  state.isps.forEach((isp, index) => {
    const ends = upstream(index + 1);
    serverBatch.push(
      `link set ${isp.name} up`,
      `addr add ${ends.server}/31 dev ${isp.name}`,
      `route add ${isp.customerBlock} via ${ends.isp} dev ${isp.name}`,
      ...(isp.alternateBlock !== undefined ? [`route add ${isp.alternateBlock} via ${ends.isp} dev ${isp.name}`] : []),
    );
  });
  setups.push({ ns: state.server.ns, sysctls: ['net/ipv4/ip_forward=0'], masqueradeInterface: '', batch: serverBatch });
  return setups;
}

/**
 * Everything one gateway's veths need once made: the gateway's own namespace, the ISP ends of its
 * links, its LAN client's end (or the parking one). Applied at creation, and again after the
 * gateway's namespace is recreated (a power cycle), so both paths set up the same state.
 */
function gatewaySetups(state: LabState, gateway: LabGateway): NamespaceSetup[] {
  const setups: NamespaceSetup[] = [];
  for (const link of gateway.links) {
    if (link.carrier !== undefined) {
      setups.push({
        ns: link.ispNs,
        // The carrier only carries the relay's UDP: nothing arriving on it is forwarded.
        sysctls: [`net/ipv4/conf/${link.carrier.ispInterface}/forwarding=0`],
        masqueradeInterface: '',
        batch: [`link set ${link.carrier.ispInterface} mtu ${CARRIER_MTU} up`, `addr add ${link.carrier.ispAddress}/31 dev ${link.carrier.ispInterface}`],
      });
      continue;
    }
    setups.push({
      ns: link.ispNs,
      sysctls: [],
      masqueradeInterface: '',
      batch: [
        `link set ${link.ispInterface} up`,
        // Same router address towards every customer; each customer reached by a host route.
        `addr add ${link.nextHop}/${link.prefixLength} dev ${link.ispInterface} noprefixroute`,
        `route add ${link.gatewayAddress}/32 dev ${link.ispInterface}`,
      ],
    });
  }

  const batch = [
    'link set lo up',
    `link set ${MGMT_INTERFACE} up`,
    `addr add ${gateway.mgmtAddress}/31 dev ${MGMT_INTERFACE}`,
    `link set ${gateway.lanInterface} up`,
    `addr add ${gateway.lanAddress}/${LAN_PREFIX_LENGTH} dev ${gateway.lanInterface}`,
    // The second LAN subnet is connected too, so the gateway answers the extra LAN sources directly.
    ...(gateway.secondLan !== undefined ? [`addr add ${gateway.secondLan.lanAddress}/${gateway.secondLan.prefixLength} dev ${gateway.lanInterface}`] : []),
  ];
  for (const link of gateway.links) {
    if (link.kind === 'static') {
      batch.push(`link set ${link.interface} up`, `addr add ${link.gatewayAddress}/${link.prefixLength} dev ${link.interface}`);
    } else if (link.carrier !== undefined) {
      batch.push(`link set ${link.carrier.interface} mtu ${CARRIER_MTU} up`, `addr add ${link.carrier.address}/31 dev ${link.carrier.interface}`);
    } else {
      // dhcp: dhclient adds the address and its default route once it has a lease.
      batch.push(`link set ${link.interface} up`);
    }
  }
  const first = gateway.links[0];
  if (first?.kind === 'static') batch.push(`route add default via ${first.nextHop} dev ${first.interface}`);
  setups.push({
    ns: gateway.ns,
    sysctls: ['net/ipv4/ip_forward=1'],
    masqueradeInterface: state.baselineNat && first !== undefined ? first.interface : '',
    batch,
  });

  if (gateway.lanClientNs !== undefined) {
    setups.push({
      ns: gateway.lanClientNs,
      sysctls: ['net/ipv4/ip_forward=0'],
      masqueradeInterface: '',
      batch: [
        'link set lo up',
        `link set ${LAN_CLIENT_INTERFACE} up`,
        // First, so it stays the primary address: the source of traffic not bound to another one.
        `addr add ${gateway.lanClientAddress}/${LAN_PREFIX_LENGTH} dev ${LAN_CLIENT_INTERFACE}`,
        ...secondLanSources(gateway).map((address) => `addr add ${address} dev ${LAN_CLIENT_INTERFACE}`),
        `route add default via ${gateway.lanAddress}`,
      ],
    });
  } else {
    setups.push({ ns: state.parkingNs as string, sysctls: [], masqueradeInterface: '', batch: [`link set ${gateway.name} up`] });
  }
  return setups;
}

/** One setup per namespace (one process each), keeping every namespace's lines in order. */
function mergeByNamespace(setups: readonly NamespaceSetup[]): NamespaceSetup[] {
  const merged = new Map<string, NamespaceSetup>();
  for (const setup of setups) {
    const into = merged.get(setup.ns);
    if (into === undefined) {
      merged.set(setup.ns, { ...setup, sysctls: [...setup.sysctls], batch: [...setup.batch] });
      continue;
    }
    into.sysctls.push(...setup.sysctls);
    into.batch.push(...setup.batch);
    if (setup.masqueradeInterface !== '') into.masqueradeInterface = setup.masqueradeInterface;
  }
  return [...merged.values()];
}

export function namespaceSetups(state: LabState): NamespaceSetup[] {
  return mergeByNamespace([...sharedSetups(state), ...state.gateways.flatMap((gateway) => gatewaySetups(state, gateway))]);
}

async function applySetups(setups: readonly NamespaceSetup[]): Promise<void> {
  const limit = pLimit(SETUP_CONCURRENCY);
  await Promise.all(
    setups.map((setup) =>
      limit(() =>
        run(
          ['nsenter', `--net=/run/netns/${setup.ns}`, 'sh', '-c', SETUP_SCRIPT, 'sh', setup.masqueradeInterface, ...setup.sysctls],
          { input: setup.batch.join('\n') + '\n' },
        ),
      ),
    ),
  );
}

export async function buildNetwork(state: LabState): Promise<void> {
  await run(['ip', '-batch', '-'], { input: rootBatch(state).join('\n') + '\n' });
  await applySetups(namespaceSetups(state));
}

/**
 * A power cycle of one gateway's network: its namespace and every veth to it are deleted (so
 * nothing installed in it survives) and made again exactly as at creation. The veths are deleted
 * first, by name: a deleted namespace frees its links only later, and the new ones reuse the names.
 */
export async function rebuildGatewayNetwork(state: LabState, gateway: LabGateway): Promise<void> {
  const ownLinks = [MGMT_INTERFACE, gateway.lanInterface, ...gateway.links.map((link) => link.carrier?.interface ?? link.interface)];
  await run(['ip', '-n', gateway.ns, '-force', '-batch', '-'], { input: ownLinks.map((link) => `link del ${link}\n`).join(''), allowFailure: true });
  await run(['ip', 'netns', 'del', gateway.ns], { allowFailure: true });
  await run(['ip', '-batch', '-'], { input: [`netns add ${gateway.ns}`, ...gatewayRootLines(state, gateway)].join('\n') + '\n' });
  await applySetups(mergeByNamespace(gatewaySetups(state, gateway)));
}
