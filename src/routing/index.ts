/** Everything lbprov does with iproute2, per address family: facts, template lines, steps. */
export { routingFactsSections, routingSection, parseRoutingFacts, type RoutingFacts } from './facts.js';
export { routeTablesFromTemplate, ipRulesFromTemplate } from './templates.js';
export { routeSteps, ruleSteps } from './steps.js';
export { canonicalIpRuleFromJson, canonicalIpRuleFromText, parseIpRules, ipRuleResource, type CanonicalIpRule } from './rules.js';
export { canonicalRouteFromJson, canonicalRouteFromText, parseIpRoutes, routeTableResource, type CanonicalRoute } from './routes.js';
export { parseInterfaces, parseIpAddr } from './interfaces.js';
export { splitJsonDocuments } from './reader.js';
export { describeLinkPath, linkRoute, mainDefaultVia, resolveLinkPath, resolveLinkPaths, UNREACHABLE_ROUTE, type LinkPath, type NextHopSource } from './next-hop.js';
