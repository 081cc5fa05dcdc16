/** inventory + playbook + templates + facts -> the resources a gateway should have. */
import { createHash } from 'node:crypto';
import type { GatewaySpec } from '../model/inventory.js';
import { knownFile, type FactsRequest, type HostFacts, type KnownFile } from '../model/facts.js';
import type { FileResource, Resource, ServiceResource } from '../model/resources.js';
import { resourceId } from '../model/resources.js';
import { FIREWALL_RECORD_PATH, HOOKS_DIR, MANIFEST_PATH } from '../model/paths.js';
import { ownedRanges, type OwnedRanges } from '../model/ownership.js';
import { meaningfulLines } from '../model/text.js';
import { InputError } from '../errors.js';
import { ipRulesFromTemplate, routeTablesFromTemplate } from '../routing/index.js';
import { FIREWALL_BACKENDS, firewallBackend, type FirewallBackend } from '../firewall/index.js';
import { rendersFor, type Playbook, type PlaybookEntry } from './playbook.js';
import type { TemplateSet } from './templates.js';
import { buildBalancerView } from './view-model.js';
import { kernelModuleResources } from './modules.js';
import { fileResource, persistenceResources } from './persistence.js';

/**
 * The pre-render, before any connection: every template renders once with the facts-free view of
 * each backend it is for (so a missing variable is an input error naming file:line, never a failure
 * half-way through a fleet), and what the facts script must read comes out of it: the sysctl keys,
 * files and services the playbook manages, and the files' likely contents (a gateway that has
 * them sends their hashes instead). `contents`: one run's texts by hash, so a fleet whose
 * gateways share a file's content holds it once.
 */
export function factsRequestFor(gw: GatewaySpec, playbook: Playbook, templates: TemplateSet, contents = new Map<string, string>()): FactsRequest {
  const ranges = ownedRanges(gw);
  const sysctlKeys = new Set<string>();
  const filePaths = new Set<string>([FIREWALL_RECORD_PATH]);
  const services = new Set<string>();
  const known = new Map<string, KnownFile>();
  const addKnown = (path: string, text: string): void => {
    const file = knownFile(path, text);
    const shared = contents.get(file.sha256) ?? (contents.set(file.sha256, text), text);
    known.set(`${file.sha256} ${path}`, { ...file, content: shared });
  };
  for (const backend of FIREWALL_BACKENDS) {
    const view = buildBalancerView(gw, backend, null);
    addKnown(FIREWALL_RECORD_PATH, `${backend.name}\n`);
    for (const entry of playbook.resources.filter((e) => rendersFor(e, gw, backend.name, null))) {
      if (entry.type === 'file') filePaths.add(entry.path);
      if (entry.type === 'service') {
        services.add(entry.name);
        continue;
      }
      const text = templates.render(entry.template, view);
      if (entry.type === 'file') addKnown(entry.path, text);
      if (entry.type === 'sysctl') for (const r of resourcesFromText(entry, text, entry.template, ranges, backend)) if (r.kind === 'sysctl') sysctlKeys.add(r.key);
    }
  }
  for (const hook of gw.hooks) {
    filePaths.add(`${HOOKS_DIR}/${hook.name}`);
    addKnown(`${HOOKS_DIR}/${hook.name}`, hook.content);
  }
  const firewallCandidates = FIREWALL_BACKENDS.filter((b) => playbook.resources.some((e) => e.type === 'firewall' && e.backend === b.name)).map((b) => b.name);
  if (firewallCandidates.length === 0) throw new InputError(playbook.path, 'resources', 'the playbook has no firewall entry: nothing would balance');
  if (gw.firewall !== 'auto' && !firewallCandidates.includes(gw.firewall)) {
    throw new InputError(gw.source, `gateways.${gw.name}.firewall`, `${gw.firewall} is set, but the playbook ${playbook.path} has firewall entries only for ${firewallCandidates.join(', ')}`);
  }
  return { sysctlKeys: [...sysctlKeys], filePaths: [...filePaths], services: [...services], ranges, firewall: gw.firewall, firewallCandidates, knownFiles: [...known.values()] };
}

/** The playbook's entries for the gateway's backend, rendered; services last (they hash the files). */
function renderPlaybook(gw: GatewaySpec, playbook: Playbook, templates: TemplateSet, backend: FirewallBackend, facts: HostFacts, mode: 'now' | 'boot' = 'now'): Resource[] {
  const view = buildBalancerView(gw, backend, facts, mode);
  const ranges = ownedRanges(gw);
  const entries = playbook.resources.filter((e) => rendersFor(e, gw, backend.name, facts.tools.initSystem));
  const resources: Resource[] = [];
  for (const entry of entries) {
    if (entry.type === 'service') continue;
    resources.push(...resourcesFromText(entry, templates.render(entry.template, view), `${templates.dir}/${entry.template}`, ranges, backend));
  }
  for (const entry of entries) if (entry.type === 'service') resources.push(serviceResource(entry, resources, playbook));
  return resources;
}

export function renderDesiredState(gw: GatewaySpec, playbook: Playbook, templates: TemplateSet, facts: HostFacts): Resource[] {
  const backend = firewallBackend(facts.firewall.chosen);
  const resources = renderPlaybook(gw, playbook, templates, backend, facts);
  // The inventory's hooks, as they are on this machine: the monitor runs them from here.
  resources.push(...gw.hooks.map((h) => fileResource(`${HOOKS_DIR}/${h.name}`, '0755', h.content)));
  resources.push(...kernelModuleResources(backend, facts, resources));
  const boot = renderPlaybook(gw, playbook, templates, backend, facts, 'boot');
  resources.push(...persistenceResources(gw.name, backend, templates, facts, boot, resources));
  resources.push(fileResource(FIREWALL_RECORD_PATH, '0644', `${backend.name}\n`));
  resources.push(manifestResource(resources));
  const seen = new Set<string>();
  for (const r of resources) {
    if (seen.has(r.id)) throw new InputError(playbook.path, r.id, 'two playbook entries render the same resource');
    seen.add(r.id);
  }
  return resources;
}

/**
 * A service's revision is the hash of the files it runs from: changing one restarts it. A listed
 * file the playbook declares but does not render on this gateway (`when:`) is left out.
 */
function serviceResource(entry: Extract<PlaybookEntry, { type: 'service' }>, resources: Resource[], playbook: Playbook): ServiceResource {
  const hash = createHash('sha256');
  for (const path of entry.files) {
    const file = resources.find((r): r is FileResource => r.kind === 'file' && r.path === path);
    if (!file) {
      if (playbook.resources.some((e) => e.type === 'file' && e.path === path)) continue;
      throw new InputError(playbook.path, `service ${entry.name}`, `file ${path} is not rendered by any playbook entry before it`);
    }
    hash.update(`${path}\0${file.mode}\0${file.content}\0`);
  }
  return { kind: 'service', id: resourceId('service', entry.name), name: entry.name, revision: hash.digest('hex').slice(0, 16) };
}

/** The list of files lbprov placed, so a later run can remove those no longer wanted. */
function manifestResource(resources: Resource[]): FileResource {
  const paths = resources.filter((r): r is FileResource => r.kind === 'file').map((r) => r.path);
  const content = ['# Files managed by lbprov. Do not edit.', ...[MANIFEST_PATH, ...paths].sort()].join('\n') + '\n';
  return fileResource(MANIFEST_PATH, '0644', content);
}

export function resourcesFromText(entry: PlaybookEntry, text: string, source: string, ranges: OwnedRanges, backend: FirewallBackend): Resource[] {
  const at = (n: number) => `${source} (rendered line ${n})`;
  switch (entry.type) {
    case 'file':
      return [fileResource(entry.path, entry.mode, text)];
    case 'sysctl':
      return meaningfulLines(text).map(({ line, n }) => {
        const m = /^([a-z0-9_]+(?:\.[A-Za-z0-9_@/-]+)+)\s*=\s*([0-9A-Za-z_ .-]{1,64})$/.exec(line);
        if (!m) throw new InputError(at(n), 'sysctl', `expected "key = value", got ${JSON.stringify(line)}`);
        return { kind: 'sysctl', id: resourceId('sysctl', m[1]!), key: m[1]!, value: m[2]!.trim() };
      });
    case 'routes':
      return routeTablesFromTemplate(text, 'ipv4', ranges, at);
    case 'ip-rules':
      return ipRulesFromTemplate(text, 'ipv4', ranges, at);
    case 'firewall':
      return backend.resourcesFromTemplate({ ...(entry.table ? { table: entry.table } : {}), text, family: 'ipv4', at });
    case 'service':
      return [];
  }
}
