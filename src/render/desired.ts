/** inventory + playbook + templates + facts -> the resources a gateway should have. */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import { createHash } from 'node:crypto';
import type { FileResource, Resource, RouteTableResource, ServiceResource } from '../model/resources.js';
import { MANIFEST_PATH, type FactsRequest } from '../facts/gather.js';
import { InputError } from '../errors.js';
import type { Playbook, PlaybookEntry } from './playbook.js';
import type { TemplateSet } from './templates.js';
import { buildBalancerView } from './view-model.js';
import { firewallBackend } from '../firewall/index.js';
import { meaningfulLines } from './lines.js';
import { canonicalIpRuleFromText, canonicalRouteFromText } from '../facts/iproute.js';
import { ownedRanges, type OwnedRanges } from './ownership.js';
import { kernelModuleResources } from './modules.js';
import { persistenceResources } from './persistence.js';


/**
 * The pre-render, before any connection: every template renders once with the
 * facts-free view (so a missing variable is an input error naming file:line,
 * never a failure half-way through a fleet), and what the facts script must
 * read comes out of it: the sysctl keys, files and services the playbook manages.
 */
export function factsRequestFor(gw: GatewaySpec, playbook: Playbook, templates: TemplateSet): FactsRequest {
  const view = buildBalancerView(gw, null);
  const sysctlKeys: string[] = [];
  const filePaths: string[] = [];
  const services: string[] = [];
  for (const entry of playbook.resources) {
    if (entry.type === 'file') filePaths.push(entry.path);
    if (entry.type === 'service') {
      services.push(entry.name);
      continue;
    }
    const text = templates.render(entry.template, view);
    if (entry.type !== 'sysctl') continue;
    for (const r of resourcesFromText(entry, text, entry.template, ownedRanges(gw))) {
      if (r.kind === 'sysctl') sysctlKeys.push(r.key);
    }
  }
  return { sysctlKeys, filePaths, services, ranges: ownedRanges(gw) };
}

export function renderDesiredState(gw: GatewaySpec, playbook: Playbook, templates: TemplateSet, facts: HostFacts): Resource[] {
  const view = buildBalancerView(gw, facts);
  const ranges = ownedRanges(gw);
  const resources: Resource[] = [];
  for (const entry of playbook.resources) {
    if (entry.type === 'service') continue;
    const text = templates.render(entry.template, view);
    resources.push(...resourcesFromText(entry, text, `${templates.dir}/${entry.template}`, ranges));
  }
  for (const entry of playbook.resources) {
    if (entry.type === 'service') resources.push(serviceResource(entry, resources, playbook.path));
  }
  resources.push(...kernelModuleResources(facts, resources));
  resources.push(...persistenceResources(gw, playbook, templates, facts, resources));
  resources.push(manifestResource(resources));
  const seen = new Set<string>();
  for (const r of resources) {
    if (seen.has(r.id)) throw new InputError(playbook.path, r.id, 'two playbook entries render the same resource');
    seen.add(r.id);
  }
  return resources;
}

/** A service's revision is the hash of the files it runs from: changing one restarts it. */
function serviceResource(entry: Extract<PlaybookEntry, { type: 'service' }>, resources: Resource[], source: string): ServiceResource {
  const hash = createHash('sha256');
  for (const path of entry.files) {
    const file = resources.find((r): r is FileResource => r.kind === 'file' && r.path === path);
    if (!file) throw new InputError(source, `service ${entry.name}`, `file ${path} is not rendered by any playbook entry before it`);
    hash.update(`${path}\0${file.mode}\0${file.content}\0`);
  }
  return { kind: 'service', id: `service:${entry.name}`, name: entry.name, revision: hash.digest('hex').slice(0, 16) };
}

/** The list of files lbprov placed, so a later run can remove those no longer wanted. */
function manifestResource(resources: Resource[]): FileResource {
  const paths = resources.filter((r): r is FileResource => r.kind === 'file').map((r) => r.path);
  const content = ['# Files managed by lbprov. Do not edit.', ...[MANIFEST_PATH, ...paths].sort()].join('\n') + '\n';
  return { kind: 'file', id: `file:${MANIFEST_PATH}`, path: MANIFEST_PATH, mode: '0644', content };
}

export function resourcesFromText(entry: PlaybookEntry, text: string, source: string, ranges: OwnedRanges): Resource[] {
  const at = (n: number) => `${source} (rendered line ${n})`;
  switch (entry.type) {
    case 'file':
      return [{ kind: 'file', id: `file:${entry.path}`, path: entry.path, mode: entry.mode, content: text }];
    case 'sysctl':
      return meaningfulLines(text).map(({ line, n }) => {
        const m = /^([a-z0-9_]+(?:\.[A-Za-z0-9_@/-]+)+)\s*=\s*([0-9A-Za-z_ .-]{1,64})$/.exec(line);
        if (!m) throw new InputError(at(n), 'sysctl', `expected "key = value", got ${JSON.stringify(line)}`);
        return { kind: 'sysctl', id: `sysctl:${m[1]}`, key: m[1]!, value: m[2]!.trim() };
      });
    case 'routes': {
      const tables = new Map<number, RouteTableResource>();
      for (const { line, n } of meaningfulLines(text)) {
        const route = parseOr(at(n), 'route', () => canonicalRouteFromText(line));
        if (!ranges.tables.has(route.table)) throw new InputError(at(n), 'route', `table ${route.table} is not one lbprov owns on this gateway`);
        const t = tables.get(route.table) ?? { kind: 'route-table', id: `route-table:${route.table}`, family: 'ipv4', table: route.table, routes: [] };
        t.routes.push(route.route);
        tables.set(route.table, t);
      }
      return [...tables.values()].map((t) => ({ ...t, routes: [...t.routes].sort() }));
    }
    case 'ip-rules':
      return meaningfulLines(text).map(({ line, n }) => {
        const rule = parseOr(at(n), 'ip rule', () => canonicalIpRuleFromText(line));
        if (rule.priority < ranges.priorityFirst || rule.priority > ranges.priorityLast) {
          throw new InputError(at(n), 'ip rule', `priority ${rule.priority} is outside lbprov's range ${ranges.priorityFirst}-${ranges.priorityLast}`);
        }
        return { kind: 'ip-rule', id: `ip-rule:${rule.priority}`, family: 'ipv4', priority: rule.priority, selector: rule.selector };
      });
    case 'iptables':
      return firewallBackend(entry.type)!.resourcesFromTemplate(entry.table, text, 'ipv4', at);
    case 'service':
      return [];
  }
}

function parseOr<T>(where: string, what: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new InputError(where, what, (e as Error).message);
  }
}
