/**
 * What outlives a reboot and what `down` puts back. From the rendered
 * resources: the files /etc/lbprov/restore.sh reads at boot (when the
 * playbook installs restore.sh), the systemd unit that runs it, and the
 * record of the kernel settings as they were before lbprov's first up.
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { ChainResource, FileResource, JumpResource, Resource, RouteTableResource, RoutingRuleResource, ServiceResource, SysctlResource } from '../model/resources.js';
import type { Playbook } from './playbook.js';
import type { TemplateSet } from './templates.js';
import { renderDesiredState } from './desired.js';

export const RESTORE_SCRIPT_PATH = '/etc/lbprov/restore.sh';
export const PERSIST_DIR = '/etc/lbprov/persist';
export const SYSTEMD_UNIT_PATH = '/etc/systemd/system/lbprov.service';
/** A drop-in instead of the multi-user.target.wants symlink `systemctl enable` makes: a plain file, diffed like any other. */
export const SYSTEMD_WANTS_PATH = '/etc/systemd/system/multi-user.target.d/lbprov.conf';
export const SYSCTL_ORIGINAL_PATH = '/var/lib/lbprov/sysctl.orig';

export interface PersistView {
  gateway: string;
  tables: { table: string; chains: { name: string; rules: string[] }[]; jumps: { chain: string; rule: string }[] }[];
  rules: { priority: string; selector: string }[];
  routes: { table: string; route: string }[];
  sysctls: { key: string; value: string }[];
  services: { name: string; revision: string }[];
}

/** The saved state, read from resources in the order the templates write them. */
export function buildPersistView(gateway: string, resources: readonly Resource[]): PersistView {
  const of = <K extends Resource['kind']>(kind: K) => resources.filter((r): r is Extract<Resource, { kind: K }> => r.kind === kind);
  const chains = of('chain') as ChainResource[];
  const jumps = of('jump') as JumpResource[];
  const tables = [...new Set([...chains, ...jumps].map((r) => r.table))].map((table) => ({
    table,
    chains: chains.filter((c) => c.table === table).map((c) => ({ name: c.chain, rules: c.rules })),
    jumps: jumps.filter((j) => j.table === table).map((j) => ({ chain: j.chain, rule: j.rule })),
  }));
  return {
    gateway,
    tables,
    rules: (of('ip-rule') as RoutingRuleResource[]).map((r) => ({ priority: String(r.priority), selector: r.selector })),
    routes: (of('route-table') as RouteTableResource[]).flatMap((t) => t.routes.map((route) => ({ table: String(t.table), route }))),
    sysctls: (of('sysctl') as SysctlResource[]).map((s) => ({ key: s.key, value: s.value })),
    services: (of('service') as ServiceResource[]).map((s) => ({ name: s.name, revision: s.revision })),
  };
}

/**
 * The state to restore at boot is the balancer with every link up (the monitor starts that way
 * after a reboot), not the chain a failover swapped in: so a failover never changes these files.
 */
function bootResources(gw: GatewaySpec, playbook: Playbook, templates: TemplateSet, facts: HostFacts, resources: readonly Resource[]): readonly Resource[] {
  const anyDown = Object.entries(facts.monitor.state).some(([k, v]) => /^link\.[^.]+$/.test(k) && v === 'down');
  return anyDown ? renderDesiredState(gw, playbook, templates, { ...facts, monitor: { ...facts.monitor, state: {} } }) : resources;
}

function file(path: string, mode: string, content: string): FileResource {
  return { kind: 'file', id: `file:${path}`, path, mode, content };
}

/** Called by renderDesiredState with the resources rendered so far (before the manifest). */
export function persistenceResources(gw: GatewaySpec, playbook: Playbook, templates: TemplateSet, facts: HostFacts, resources: readonly Resource[]): FileResource[] {
  const out: FileResource[] = [];
  const original = originalSysctlsResource(facts, resources);
  if (original) out.push(original);
  if (!resources.some((r) => r.kind === 'file' && r.path === RESTORE_SCRIPT_PATH)) return out;
  const view = buildPersistView(gw.name, bootResources(gw, playbook, templates, facts, resources));
  out.push(
    file(`${PERSIST_DIR}/iptables.rules`, '0600', templates.render('persist-iptables.hbs', view)),
    file(`${PERSIST_DIR}/ip.batch`, '0600', templates.render('persist-ip.hbs', view)),
    file(`${PERSIST_DIR}/sysctl.conf`, '0644', templates.render('persist-sysctl.hbs', view)),
    file(`${PERSIST_DIR}/services`, '0644', templates.render('persist-services.hbs', view)),
  );
  if (facts.tools.initSystem === 'systemd') {
    out.push(file(SYSTEMD_UNIT_PATH, '0644', templates.render('lbprov.service.hbs', view)), file(SYSTEMD_WANTS_PATH, '0644', templates.render('lbprov-wants.conf.hbs', view)));
  }
  return out;
}

/** `key = value` lines of a sysctl file; comments and anything else ignored. */
export function parseSysctlLines(content: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of content.split('\n')) {
    const m = /^([a-z0-9_][^\s=#]*)\s*=\s*(\S+)\s*$/.exec(line);
    if (m) values.set(m[1]!, m[2]!);
  }
  return values;
}

/**
 * The values of the sysctls lbprov manages, as they were before lbprov set them: written at the
 * first up from the facts, then only ever extended (a key managed later, e.g. a new link's
 * rp_filter, is recorded when it first appears), never rewritten.
 */
export function originalSysctlsResource(facts: HostFacts, resources: readonly Resource[]): FileResource | null {
  const current = facts.owned.find((r): r is FileResource => r.kind === 'file' && r.path === SYSCTL_ORIGINAL_PATH);
  const recorded = parseSysctlLines(current?.content ?? '');
  const added = resources
    .filter((r): r is SysctlResource => r.kind === 'sysctl')
    .filter((r) => !recorded.has(r.key) && /^\S+$/.test(facts.sysctls[r.key] ?? ''))
    .map((r) => `${r.key} = ${facts.sysctls[r.key]}`);
  if (current && added.length === 0) return current;
  if (!current && added.length === 0) return null;
  const header = '# Written by lbprov: kernel settings as they were before lbprov changed them. `lbprov down` restores them.\n';
  const content = (current?.content ?? header) + added.join('\n') + '\n';
  return file(SYSCTL_ORIGINAL_PATH, '0644', content);
}

/**
 * `down`'s desired state: the recorded original settings. The sysctls lbprov does not own once it
 * is gone are dropped from the current side, so a later `down --check` has nothing to do.
 */
export function removalState(facts: HostFacts): { desired: SysctlResource[]; current: Resource[] } {
  const record = facts.owned.find((r): r is FileResource => r.kind === 'file' && r.path === SYSCTL_ORIGINAL_PATH);
  const originals = parseSysctlLines(record?.content ?? '');
  // A key gone from the kernel (its interface removed) has nothing left to restore.
  const desired = [...originals]
    .filter(([key]) => /^\S+$/.test(facts.sysctls[key] ?? ''))
    .map(([key, value]): SysctlResource => ({ kind: 'sysctl', id: `sysctl:${key}`, key, value }));
  const current = facts.owned.filter((r) => r.kind !== 'sysctl' || originals.has(r.key));
  return { desired, current };
}
