/** Finding a gateway's links, and reading a link's live address and router from its namespace. */
import { LabError } from './errors.js';
import { run } from './run.js';
import type { LabGateway, LabLink } from './state.js';

/** A link by index (from 0) or name (isp1). */
export type LinkRef = number | string;

export function findLink(gateway: LabGateway, ref: LinkRef): LabLink {
  const link = typeof ref === 'number' ? gateway.links[ref] : gateway.links.find((candidate) => candidate.name === ref);
  if (link === undefined) throw new LabError(`${gateway.name} has no link ${ref}`);
  return link;
}

/** The link a source address the server saw belongs to: any address the link has had or can get. */
export function linkBySource(gateway: LabGateway, source: string): LabLink | undefined {
  return gateway.links.find(
    (link) => link.gatewayAddress === source || (link.pools ?? []).some((pool) => pool.gatewayAddress === source),
  );
}

/** The link's pools, for operations only dynamic links have. */
export function dynamicPools(gateway: LabGateway, link: LabLink, kind: 'dhcp' | 'p2p'): NonNullable<LabLink['pools']> {
  if (link.kind !== kind || link.pools === undefined) throw new LabError(`${gateway.name} ${link.name} is a ${link.kind} link, not ${kind}`);
  return link.pools;
}

/** The interface's first IPv4 address in namespace ns; null when it has none or does not exist. */
export async function readAddress(ns: string, device: string): Promise<string | null> {
  const result = await run(['ip', '-n', ns, '-j', '-4', 'addr', 'show', 'dev', device], { allowFailure: true });
  if (result.code !== 0) return null;
  const [entry] = JSON.parse(result.stdout) as { addr_info?: { local?: string }[] }[];
  return entry?.addr_info?.[0]?.local ?? null;
}

/** Next hops of the main table's default routes through `device` (what a DHCP client installed). */
export async function readDefaultRouters(ns: string, device: string): Promise<string[]> {
  const result = await run(['ip', '-n', ns, '-j', '-4', 'route', 'show', 'table', 'main', 'default', 'dev', device], { allowFailure: true });
  if (result.code !== 0) return [];
  return (JSON.parse(result.stdout) as { gateway?: string }[]).flatMap((route) => (route.gateway !== undefined ? [route.gateway] : []));
}

/** Whether the interface exists in namespace ns. */
export async function deviceExists(ns: string, device: string): Promise<boolean> {
  return (await run(['ip', '-n', ns, 'link', 'show', 'dev', device], { allowFailure: true })).code === 0;
}
