/** Runtime control of a lab's dynamic links: DHCP renumbering, p2p sessions, the live address. */
import { DEFAULT_LEASE_TIMEOUT_MS, renumber, type DhcpLease } from './dhcp.js';
import type { GatewayRef, Lab } from './lab.js';
import { dynamicPools, findLink, readAddress, type LinkRef } from './links.js';
import { connect, DEFAULT_SESSION_TIMEOUT_MS, drop, type P2pSession } from './p2p.js';

export type { DhcpLease } from './dhcp.js';
export type { P2pSession } from './p2p.js';

export interface RenumberOptions {
  /** 'next': the pool after the current one (there are two, so each renumbering changes subnet and router); or a pool's index. */
  pool: 'next' | number;
  /** How long to wait for the new lease (default 30000). */
  timeoutMs?: number;
}

/**
 * The ISP starts handing out a new address range with a new router, and the gateway's dhclient is
 * made to ask again; resolves once the new address and its default route are on the gateway.
 */
export async function renumberDhcp(lab: Lab, gatewayRef: GatewayRef, linkRef: LinkRef, options: RenumberOptions = { pool: 'next' }): Promise<DhcpLease> {
  const gateway = lab.gateway(gatewayRef);
  const link = findLink(gateway, linkRef);
  const pools = dynamicPools(gateway, link, 'dhcp');
  const target = options.pool === 'next' ? ((link.pool ?? 0) + 1) % pools.length : options.pool;
  return renumber(lab.state, gateway, link, target, options.timeoutMs ?? DEFAULT_LEASE_TIMEOUT_MS);
}

export interface ConnectOptions {
  /** true (default): the session gets addresses other than the last session's; false: the last session's again. */
  fresh?: boolean;
  timeoutMs?: number;
}

/** Brings up a p2p session; resolves with its addresses once ppp<k> carries them. */
export async function connectP2p(lab: Lab, gatewayRef: GatewayRef, linkRef: LinkRef, options: ConnectOptions = {}): Promise<P2pSession> {
  const gateway = lab.gateway(gatewayRef);
  const link = findLink(gateway, linkRef);
  const pools = dynamicPools(gateway, link, 'p2p');
  const last = link.pool;
  // The first session takes pool 0, whether the lab connected it or it started down.
  const pool = last === undefined ? 0 : options.fresh === false ? last : (last + 1) % pools.length;
  return connect(lab.state, gateway, link, pool, options.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS);
}

/** Ends the link's p2p session: ppp<k> disappears (nothing happens when no session is up). */
export async function dropP2p(lab: Lab, gatewayRef: GatewayRef, linkRef: LinkRef): Promise<void> {
  const gateway = lab.gateway(gatewayRef);
  const link = findLink(gateway, linkRef);
  dynamicPools(gateway, link, 'p2p');
  await drop(lab.state, gateway, link);
}

/** The link's gateway-side IPv4 address as the gateway's namespace has it now; null when it has none. */
export async function linkAddress(lab: Lab, gatewayRef: GatewayRef, linkRef: LinkRef): Promise<string | null> {
  const gateway = lab.gateway(gatewayRef);
  return readAddress(gateway.ns, findLink(gateway, linkRef).interface);
}
