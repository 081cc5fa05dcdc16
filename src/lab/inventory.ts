/** The inventory `lbprov lab up` writes for its gateways (the shape is the inventory contract). */
import { Document, isScalar, isSeq, visit } from 'yaml';
import type { LabLink, LabState } from './state.js';

/** The inventory's `gateway` of a link: its router, `dhcp` (learned from the lease), or `none` (p2p: the route is `dev ppp<k>`). */
function inventoryGateway(link: LabLink): string {
  if (link.kind === 'dhcp') return 'dhcp';
  if (link.kind === 'p2p') return 'none';
  return link.nextHop;
}

/** First line of every lab inventory; `destroy` removes only a file that starts with it. */
export function inventoryHeader(state: LabState): string {
  return `# lbprov lab ${state.prefix}: written by lab up, removed by lab down (state: ${state.stateFile})`;
}

export function labGroups(names: readonly string[]): Record<string, string[]> {
  const groups: Record<string, string[]> = { lab: [...names] };
  if (names.length >= 2) {
    const half = Math.ceil(names.length / 2);
    groups.east = names.slice(0, half);
    groups.west = names.slice(half);
  }
  return groups;
}

export function renderLabInventory(state: LabState): string {
  const gateways = Object.fromEntries(
    state.gateways.map((gateway) => [
      gateway.name,
      {
        host: gateway.mgmtAddress,
        lan: { interfaces: [gateway.lanInterface] },
        links: gateway.links.map((link) => ({
          name: link.name,
          interface: link.interface,
          gateway: inventoryGateway(link),
          weight: link.weight,
          probes: [link.probe],
        })),
      },
    ]),
  );
  const document = new Document({
    ssh: {
      user: state.ssh.user,
      port: state.ssh.port,
      identity_file: state.ssh.identityFile,
      known_hosts: state.ssh.knownHosts,
    },
    ...(state.firewall ? { defaults: { firewall: state.firewall } } : {}),
    gateways,
    groups: labGroups(state.gateways.map((gateway) => gateway.name)),
  });
  // Short lists of scalars read best inline: interfaces: [lan0], probes: [198.51.100.33].
  visit(document, {
    Seq(_, node) {
      if (isSeq(node) && node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return `${inventoryHeader(state)}\n${document.toString({ lineWidth: 0 })}`;
}
