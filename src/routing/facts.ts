/**
 * The routing half of the facts: rules, links, addresses and the routes lbprov reads of one
 * address family from one `ip -N -j -batch` process (one JSON array per command). Links come
 * from `link show` because `-4 addr show` leaves out interfaces that have no address.
 */
import type { InterfaceFacts, MainDefaultRoute } from '../model/facts.js';
import type { OwnedRanges } from '../model/ownership.js';
import type { IpFamily, Resource } from '../model/resources.js';
import { ipFamilyFlag } from './family.js';
import { parseInterfaces } from './interfaces.js';
import { splitJsonDocuments } from './reader.js';
import { parseIpRoutes, parseMainDefaultRoutes } from './routes.js';
import { parseIpRules } from './rules.js';

/**
 * Rules, links, addresses, the main table's default routes (the next hops DHCP clients installed)
 * and each table lbprov owns, in this order: never `route show table all`, which also lists a
 * VPN's or a routing daemon's thousands of routes. In batch mode ip does not ask the kernel for a
 * strict dump, so a table that does not exist lists as [] (alone, `ip route show table N` fails
 * with "FIB table does not exist").
 */
function ipBatchCommands(ranges: OwnedRanges): { commands: string[]; tables: number[] } {
  const tables = [...ranges.tables].sort((a, b) => a - b);
  return { commands: ['rule show', 'route show table main exact 0/0', 'link show', 'addr show', ...tables.map((t) => `route show table ${t}`)], tables };
}

/** The facts section's name for a family. */
export function routingSection(family: IpFamily): string {
  return family === 'ipv4' ? 'ip' : `ip-${family}`;
}

export function routingFactsSections(family: IpFamily, ranges: OwnedRanges): [string, string][] {
  return [[routingSection(family), `ip -N -j ${ipFamilyFlag(family)} -batch - <<'EOF'\n${ipBatchCommands(ranges).commands.join('\n')}\nEOF`]];
}

export interface RoutingFacts {
  resources: Resource[];
  interfaces: InterfaceFacts[];
  mainDefaultRoutes: MainDefaultRoute[];
}

/** `body`: the section's output; throws ParseError on anything that is not what `ip -j` prints. */
export function parseRoutingFacts(body: string, family: IpFamily, ranges: OwnedRanges, warnings: string[]): RoutingFacts {
  const { commands, tables } = ipBatchCommands(ranges);
  const [ruleJson, mainDefaultJson, linkJson, addrJson, ...tableJsons] = splitJsonDocuments(body, commands.length, 'ip -j -batch');
  const rules = parseIpRules(ruleJson, family, ranges.priorityFirst, ranges.priorityLast, warnings);
  const routes = tables.flatMap((table, i) => parseIpRoutes(tableJsons[i], family, ranges.tables, table));
  return {
    resources: [...rules, ...routes],
    interfaces: parseInterfaces(linkJson, addrJson, warnings),
    mainDefaultRoutes: family === 'ipv4' ? parseMainDefaultRoutes(mainDefaultJson) : [],
  };
}
