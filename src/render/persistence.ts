/**
 * What outlives a reboot and what `down` puts back. From the rendered
 * resources: the files /etc/lbprov/restore.sh reads at boot (when the
 * playbook installs restore.sh), the systemd unit that runs it, and the
 * record of the kernel settings as they were before lbprov's first up.
 */
import type { HostFacts } from '../model/facts.js';
import type { FileResource, Resource, SysctlResource } from '../model/resources.js';
import { ofKind, resourceId } from '../model/resources.js';
import { PERSIST_DIR, RESTORE_SCRIPT_PATH, SYSCTL_ORIGINAL_PATH, SYSTEMD_UNIT_PATH, SYSTEMD_WANTS_PATH } from '../model/paths.js';
import type { FirewallBackend } from '../firewall/index.js';
import type { TemplateSet } from './templates.js';

export interface PersistView {
  gateway: string;
  rules: { priority: string; selector: string }[];
  sysctls: { key: string; value: string }[];
  services: { name: string; revision: string }[];
}

/**
 * The saved state, read from resources in the order the templates write them. No routes: the
 * monitor fills every link's table (and the source rules) from what the links have at boot.
 */
export function buildPersistView(gateway: string, resources: readonly Resource[]): PersistView {
  return {
    gateway,
    rules: ofKind(resources, 'ip-rule').map((r) => ({ priority: String(r.priority), selector: r.selector })),
    sysctls: ofKind(resources, 'sysctl').map((s) => ({ key: s.key, value: s.value })),
    services: ofKind(resources, 'service').map((s) => ({ name: s.name, revision: s.revision })),
  };
}

export function fileResource(path: string, mode: string, content: string): FileResource {
  return { kind: 'file', id: resourceId('file', path), path, mode, content };
}

/**
 * Called by renderDesiredState. `boot`: the balancer as restore.sh brings it back (view-model's
 * `boot` mode: every link up, tables unreachable until the monitor fills them), so neither a
 * failover nor a renewed lease changes these files; `resources`: what is rendered now, whose
 * sysctls the original-settings record follows.
 */
export function persistenceResources(
  gateway: string,
  backend: FirewallBackend,
  templates: TemplateSet,
  facts: HostFacts,
  boot: readonly Resource[],
  resources: readonly Resource[],
): FileResource[] {
  const out: FileResource[] = [];
  const original = originalSysctlsResource(facts, resources);
  if (original) out.push(original);
  if (!resources.some((r) => r.kind === 'file' && r.path === RESTORE_SCRIPT_PATH)) return out;
  const view = buildPersistView(gateway, boot);
  const payload = backend.bootPayload(boot);
  out.push(
    fileResource(payload.path, '0600', payload.content),
    fileResource(`${PERSIST_DIR}/ip.batch`, '0600', templates.render('persist-ip.hbs', view)),
    fileResource(`${PERSIST_DIR}/sysctl.conf`, '0644', templates.render('persist-sysctl.hbs', view)),
    fileResource(`${PERSIST_DIR}/services`, '0644', templates.render('persist-services.hbs', view)),
  );
  if (facts.tools.initSystem === 'systemd') {
    out.push(fileResource(SYSTEMD_UNIT_PATH, '0644', templates.render('lbprov.service.hbs', view)), fileResource(SYSTEMD_WANTS_PATH, '0644', templates.render('lbprov-wants.conf.hbs', view)));
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

function recordedOriginals(facts: HostFacts): FileResource | undefined {
  return ofKind(facts.owned, 'file').find((r) => r.path === SYSCTL_ORIGINAL_PATH);
}

/**
 * The values of the sysctls lbprov manages, as they were before lbprov set them: written at the
 * first up from the facts, then only ever extended (a key managed later, e.g. a new link's
 * rp_filter, is recorded when it first appears), never rewritten.
 */
export function originalSysctlsResource(facts: HostFacts, resources: readonly Resource[]): FileResource | null {
  const current = recordedOriginals(facts);
  const recorded = parseSysctlLines(current?.content ?? '');
  const added = ofKind(resources, 'sysctl')
    .filter((r) => !recorded.has(r.key) && /^\S+$/.test(facts.sysctls[r.key] ?? ''))
    .map((r) => `${r.key} = ${facts.sysctls[r.key]}`);
  if (current && added.length === 0) return current;
  if (!current && added.length === 0) return null;
  const header = '# Written by lbprov: kernel settings as they were before lbprov changed them. `lbprov down` restores them.\n';
  const content = (current?.content ?? header) + added.join('\n') + '\n';
  return fileResource(SYSCTL_ORIGINAL_PATH, '0644', content);
}

/**
 * `down`'s desired state: the recorded original settings. The sysctls lbprov does not own once it
 * is gone are dropped from the current side, so a later `down --check` has nothing to do.
 */
export function removalState(facts: HostFacts): { desired: SysctlResource[]; current: Resource[] } {
  const originals = parseSysctlLines(recordedOriginals(facts)?.content ?? '');
  // A key gone from the kernel (its interface removed) has nothing left to restore.
  const desired = [...originals]
    .filter(([key]) => /^\S+$/.test(facts.sysctls[key] ?? ''))
    .map(([key, value]): SysctlResource => ({ kind: 'sysctl', id: resourceId('sysctl', key), key, value }));
  const current = facts.owned.filter((r) => r.kind !== 'sysctl' || originals.has(r.key));
  return { desired, current };
}
