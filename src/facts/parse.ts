/** The facts script's output -> HostFacts. Nothing from the output is trusted before it has been parsed and validated. */
import { createHash } from 'node:crypto';
import type { FactsRequest, FirewallFacts, HostFacts, InterfaceFacts, MainDefaultRoute } from '../model/facts.js';
import type { Resource } from '../model/resources.js';
import { IP_FAMILIES } from '../model/resources.js';
import { RemoteError } from '../errors.js';
import { readSections, SectionProtocolError, type Section, type SectionReader } from '../remote/sections.js';
import { parseRoutingFacts, routingSection } from '../routing/index.js';
import { chooseBackend } from '../firewall/choice.js';
import { firewallBackend } from '../firewall/index.js';
import { parseDhcpLeases, parseFiles, parseModules, parseMonitor, parseServices, parseTools, serviceResources, sysctlResources } from './core.js';
import { checkResources } from './resource-schemas.js';

export interface ParseFactsOptions {
  /** The script's own stderr, where its sections wrote theirs (no errorFile). */
  stderr?: string;
}

export function parseFacts(host: string, output: string, marker: string, request: FactsRequest, opts: ParseFactsOptions = {}): HostFacts {
  let sections: Map<string, Section>;
  try {
    sections = readSections(output, marker, opts.stderr ?? '');
  } catch (e) {
    if (e instanceof SectionProtocolError) throw new RemoteError(`facts ${e.message}`, { host }, 'facts');
    throw e;
  }
  const warnings: string[] = [];
  const section = (name: string): Section => {
    const s = sections.get(name);
    if (!s) throw new RemoteError(`facts output is missing section "${name}" (truncated or garbled output)`, { host, resource: name }, 'facts');
    return s;
  };
  const read: SectionReader = {
    section: (name) => sections.get(name),
    body(name, what) {
      const s = section(name);
      if (s.rc !== 0) throw new RemoteError(`${what} failed (exit ${s.rc})`, { host, command: what, stderr: s.stderr.trim(), exitCode: s.rc }, 'facts');
      if (s.stderr.trim()) warnings.push(`${what}: ${s.stderr.trim().split('\n')[0]}`);
      return s.body;
    },
  };
  const wrap = <T>(what: string, parse: () => T): T => {
    try {
      return parse();
    } catch (e) {
      if (e instanceof RemoteError) throw e;
      throw new RemoteError(`cannot parse ${what}: ${(e as Error).message}`, { host, command: what }, 'facts');
    }
  };

  const owned: Resource[] = [];
  const choice = wrap('the firewall record', () => chooseBackend(request.firewall, request.firewallCandidates, read));
  const firewall: FirewallFacts = { recorded: choice.recorded, chosen: choice.chosen.name, reason: choice.reason };
  for (const name of new Set([choice.chosen.name, ...(choice.recorded ? [choice.recorded] : [])])) {
    const backend = firewallBackend(name);
    for (const family of IP_FAMILIES) {
      const got = wrap(backend.name, () => backend.readFacts(read, family, warnings));
      owned.push(...got.resources);
      Object.assign(firewall, got.facts);
    }
  }
  let interfaces: InterfaceFacts[] = [];
  let mainDefaultRoutes: MainDefaultRoute[] = [];
  for (const family of IP_FAMILIES) {
    const body = read.body(routingSection(family), 'ip -j -batch');
    const routing = wrap('ip -j -batch', () => parseRoutingFacts(body, family, request.ranges, warnings));
    owned.push(...routing.resources);
    // A hostile gateway may list a great many: no spread into an argument list.
    interfaces = interfaces.concat(routing.interfaces);
    mainDefaultRoutes = mainDefaultRoutes.concat(routing.mainDefaultRoutes);
  }
  const { sysctls, owned: sysctlOwned } = sysctlResources(section('sysctl').body, request);
  owned.push(...sysctlOwned);
  owned.push(...wrap('the files section', () => parseFiles(section('files').body, request.knownFiles)));
  const services = parseServices(read, request);
  owned.push(...serviceResources(services));

  const facts: Omit<HostFacts, 'fingerprint'> = {
    kernel: section('kernel').body.trim(),
    interfaces,
    mainDefaultRoutes,
    dhcpLeases: parseDhcpLeases(read.section('dhcp-leases')?.body ?? '', warnings),
    owned: wrap('lbprov\'s resources', () => checkResources(owned)),
    sysctls,
    modules: parseModules(read),
    tools: parseTools(section('tools').body, section(routingSection('ipv4')).rc === 0),
    firewall,
    monitor: parseMonitor(section('monitor').body, services.find((x) => x.name === 'monitor')),
    warnings,
  };
  return { ...facts, fingerprint: factsFingerprint(facts) };
}

/**
 * What a saved plan depends on: lbprov's own state, the interfaces, what the next hops are
 * learned from, and the monitor's view of link health (not its timestamps, which move every round).
 */
export function factsFingerprint(facts: Pick<HostFacts, 'owned' | 'interfaces' | 'monitor' | 'mainDefaultRoutes' | 'dhcpLeases'>): string {
  const owned = [...facts.owned].sort((a, b) => a.id.localeCompare(b.id));
  const health = Object.entries(facts.monitor.state).filter(([k]) => /^link\.[^.]+$/.test(k) || k === 'balanced' || k === 'all_down').sort();
  // Learned next hops come from the main table's default routes and the leases.
  const data = JSON.stringify({ owned, interfaces: facts.interfaces, health, routes: facts.mainDefaultRoutes, leases: facts.dhcpLeases });
  return createHash('sha256').update(data).digest('hex');
}
