/**
 * The kernel-module part of the desired state: a `module` resource (a load)
 * for each module the rendered firewall objects need that is installed but not
 * loaded, and /etc/modules-load.d/lbprov.conf listing every non-built-in module
 * they use, so the next boot loads them before lbprov's objects come back.
 */
import type { HostFacts } from '../model/facts.js';
import type { KernelModuleResource, Resource } from '../model/resources.js';
import { resourceId } from '../model/resources.js';
import { MODULES_LOAD_PATH } from '../model/paths.js';
import type { FirewallBackend } from '../firewall/index.js';
import { fileResource } from './persistence.js';

/** Called by renderDesiredState with the resources rendered so far (before the manifest). */
export function kernelModuleResources(backend: FirewallBackend, facts: HostFacts, resources: readonly Resource[]): Resource[] {
  const plan = backend.modulePlan(resources, facts.modules, facts.firewall);
  const loads = plan.load.map((module): KernelModuleResource => ({ kind: 'module', id: resourceId('module', module), module }));
  if (plan.persist.length === 0) return loads;
  const content = ['# Managed by lbprov: netfilter modules its rules use, loaded at boot.', ...plan.persist].join('\n') + '\n';
  return [...loads, fileResource(MODULES_LOAD_PATH, '0644', content)];
}
