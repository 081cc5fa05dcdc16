/**
 * The routing half of the facts: rules, routes, links and addresses of one address family
 * from one `ip -N -j -batch` process (one JSON array each, in this order). Links come from
 * `link show` because `-4 addr show` leaves out interfaces that have no address.
 */
import type { InterfaceFacts, MainDefaultRoute } from '../model/facts.js';
import type { OwnedRanges } from '../model/ownership.js';
import type { IpFamily, Resource } from '../model/resources.js';
import { ipFamilyFlag } from './family.js';
import { parseInterfaces } from './interfaces.js';
import { splitJsonDocuments } from './reader.js';
import { parseIpRoutes, parseMainDefaultRoutes } from './routes.js';
import { parseIpRules } from './rules.js';

const IP_BATCH_COMMANDS = ['rule show', 'route show table all', 'link show', 'addr show'] as const;

/** The facts section's name for a family. */
export function routingSection(family: IpFamily): string {
  return family === 'ipv4' ? 'ip' : `ip-${family}`;
}

export function routingFactsSections(family: IpFamily): [string, string][] {
  return [[routingSection(family), `ip -N -j ${ipFamilyFlag(family)} -batch - <<'EOF'\n${IP_BATCH_COMMANDS.join('\n')}\nEOF`]];
}

export interface RoutingFacts {
  resources: Resource[];
  interfaces: InterfaceFacts[];
  mainDefaultRoutes: MainDefaultRoute[];
}

/** `body`: the section's output; throws ParseError on anything that is not what `ip -j` prints. */
export function parseRoutingFacts(body: string, family: IpFamily, ranges: OwnedRanges, warnings: string[]): RoutingFacts {
  const [ruleJson, routeJson, linkJson, addrJson] = splitJsonDocuments(body, IP_BATCH_COMMANDS.length, 'ip -j -batch');
  const rules = parseIpRules(ruleJson, family, ranges.priorityFirst, ranges.priorityLast, warnings);
  const routes = parseIpRoutes(routeJson, family, ranges.tables);
  return {
    resources: [...rules, ...routes],
    interfaces: parseInterfaces(linkJson, addrJson, warnings),
    mainDefaultRoutes: family === 'ipv4' ? parseMainDefaultRoutes(routeJson) : [],
  };
}
