/** Cutting an ISP's upstream for one gateway, while its link stays up. */
import { LabError } from './errors.js';
import type { GatewayRef, Lab } from './lab.js';
import { findLink, type LinkRef } from './links.js';
import { run } from './run.js';
import type { LabGateway, LabLink } from './state.js';

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
