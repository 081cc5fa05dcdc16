/** A playbook lists the resources of a job, each rendered from one template. */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseYamlWithSchema } from '../inventory/yaml-source.js';
import { FIREWALL_BACKENDS, type FirewallBackendName, type GatewaySpec } from '../model/inventory.js';
import { isPlaybookFile, SERVICE_NAME } from '../model/paths.js';

/** A template file, in the templates folder or one folder below it (templates/nftables/...). */
const templateName = z.string().regex(/^([A-Za-z0-9_-]+\/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*\.hbs$/, 'a file name in the templates folder (or one folder below it), ending in .hbs');
const ownedPath = z.string().refine(isPlaybookFile, 'a path lbprov owns (/etc/lbprov/..., /var/lib/lbprov/..., .../lbprov.conf), without ".." or empty segments');
/** An entry with `backend:` renders only on gateways that use that firewall backend. */
const backend = z.enum(FIREWALL_BACKENDS).optional();
/**
 * An entry with `when:` renders only on gateways it names: `dhcp-links`, those with a `gateway: dhcp`
 * link; `systemd`, those whose init system is systemd.
 */
const PLAYBOOK_CONDITIONS = ['dhcp-links', 'systemd'] as const;
const when = z.enum(PLAYBOOK_CONDITIONS).optional();

const entry = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sysctl'), template: templateName }),
  z.strictObject({
    type: z.literal('file'),
    path: ownedPath,
    mode: z.string().regex(/^0[0-7]{3}$/, 'an octal mode like "0644"').default('0644'),
    template: templateName,
    backend,
    when,
  }),
  z.strictObject({ type: z.literal('routes'), template: templateName }),
  z.strictObject({ type: z.literal('ip-rules'), template: templateName }),
  // The packet filter's objects; `table` for backends with tables of their own (iptables: mangle, nat).
  z.strictObject({ type: z.literal('firewall'), backend: z.enum(FIREWALL_BACKENDS), table: z.string().regex(/^[a-z]{1,16}$/).optional(), template: templateName }),
  // The first playbooks' form of an iptables entry: read as { type: firewall, backend: iptables }.
  z.strictObject({ type: z.literal('iptables'), table: z.enum(['mangle', 'nat']), template: templateName }),
  z.strictObject({
    type: z.literal('service'),
    // Runs /etc/lbprov/<name>.sh start|stop|restart; its pid and revision live in /run/lbprov/<name>.*
    name: z.string().regex(SERVICE_NAME),
    files: z.array(ownedPath).min(1),
  }),
]);

const playbookSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  templates: z.string().optional(),
  resources: z.array(entry).min(1),
});

type RawEntry = z.infer<typeof entry>;
export type PlaybookEntry = Exclude<RawEntry, { type: 'iptables' }>;

/** Whether an entry renders on gateway `gw` when it uses `chosen` and runs `init` (null: not known yet, so it may). */
export function rendersFor(e: PlaybookEntry, gw: Pick<GatewaySpec, 'links'>, chosen: FirewallBackendName, init: 'systemd' | 'other' | null): boolean {
  if ('when' in e && e.when === 'dhcp-links' && !gw.links.some((l) => l.nextHop.kind === 'dhcp')) return false;
  if ('when' in e && e.when === 'systemd' && init === 'other') return false;
  return !('backend' in e) || e.backend === undefined || e.backend === chosen;
}

function normalise(e: RawEntry): PlaybookEntry {
  return e.type === 'iptables' ? { type: 'firewall', backend: 'iptables', table: e.table, template: e.template } : e;
}

export interface Playbook {
  name: string;
  path: string;
  templatesDir: string;
  resources: PlaybookEntry[];
}

/**
 * The project's own folder (where the shipped playbooks/ and templates/ live): the nearest folder
 * above this module with both, since the bundled CLI (dist/lbprov.mjs) and the compiled module
 * (dist/render/playbook.js) sit at different depths.
 */
export const PACKAGE_ROOT = packageRootAbove(dirname(fileURLToPath(import.meta.url)));

function packageRootAbove(from: string): string {
  for (let dir = from; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'playbooks'))) return dir;
  }
  return resolve(from, '..', '..');
}

/** `-p` value, else playbooks/balancer.yml in the working directory, else the shipped one. */
export function resolvePlaybookPath(given: string | undefined, cwd: string): string {
  if (given) return isAbsolute(given) ? given : resolve(cwd, given);
  const local = join(cwd, 'playbooks', 'balancer.yml');
  return existsSync(local) ? local : join(PACKAGE_ROOT, 'playbooks', 'balancer.yml');
}

export function loadPlaybook(path: string): Playbook {
  const data = parseYamlWithSchema(readFileSync(path), path, playbookSchema);
  const templatesDir = data.templates ? resolve(dirname(path), data.templates) : resolve(dirname(path), '..', 'templates');
  return { name: data.name, path, templatesDir, resources: data.resources.map(normalise) };
}
