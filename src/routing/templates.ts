/** Routing resources declared by rendered templates: `ip route` lines with `table N`, `ip rule` lines with `priority N`. */
import { InputError } from '../errors.js';
import type { OwnedRanges } from '../model/ownership.js';
import type { IpFamily, RouteTableResource, RoutingRuleResource } from '../model/resources.js';
import { meaningfulLines } from '../model/text.js';
import { canonicalRouteFromText, routeTableResource } from './routes.js';
import { canonicalIpRuleFromText, ipRuleResource } from './rules.js';

function parseOr<T>(where: string, what: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new InputError(where, what, (e as Error).message);
  }
}

/** `at(line)` names the template line for errors. Tables outside lbprov's are refused. */
export function routeTablesFromTemplate(text: string, family: IpFamily, ranges: OwnedRanges, at: (n: number) => string): RouteTableResource[] {
  const tables = new Map<number, string[]>();
  for (const { line, n } of meaningfulLines(text)) {
    const route = parseOr(at(n), 'route', () => canonicalRouteFromText(line));
    if (!ranges.tables.has(route.table)) throw new InputError(at(n), 'route', `table ${route.table} is not one lbprov owns on this gateway`);
    tables.set(route.table, [...(tables.get(route.table) ?? []), route.route]);
  }
  return [...tables].map(([table, routes]) => routeTableResource(family, table, routes));
}

/** Priorities outside lbprov's range are refused. */
export function ipRulesFromTemplate(text: string, family: IpFamily, ranges: OwnedRanges, at: (n: number) => string): RoutingRuleResource[] {
  return meaningfulLines(text).map(({ line, n }) => {
    const rule = parseOr(at(n), 'ip rule', () => canonicalIpRuleFromText(line));
    if (rule.priority < ranges.priorityFirst || rule.priority > ranges.priorityLast) {
      throw new InputError(at(n), 'ip rule', `priority ${rule.priority} is outside lbprov's range ${ranges.priorityFirst}-${ranges.priorityLast}`);
    }
    return ipRuleResource(family, rule.priority, rule.selector);
  });
}
