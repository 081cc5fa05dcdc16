/**
 * The kernel-module part of the desired state: a `module` resource (a load)
 * for each module the rendered rules need that is installed but not loaded,
 * and /etc/modules-load.d/lbprov.conf listing every non-built-in module they
 * use, so the next boot loads them before lbprov's rules come back.
 */
import type { HostFacts } from '../model/facts.js';
import type { KernelModuleResource, Resource } from '../model/resources.js';
import { modulePlan } from '../checks/netfilter.js';

export const MODULES_LOAD_PATH = '/etc/modules-load.d/lbprov.conf';

/** Called by renderDesiredState with the resources rendered so far (before the manifest). */
export function kernelModuleResources(facts: HostFacts, resources: readonly Resource[]): Resource[] {
  const plan = modulePlan(resources, facts.modules, facts.tools.iptablesBackend);
  const loads = plan.load.map((module): KernelModuleResource => ({ kind: 'module', id: `module:${module}`, module }));
  if (plan.persist.length === 0) return loads;
  const content = ['# Managed by lbprov: netfilter modules its rules use, loaded at boot.', ...plan.persist].join('\n') + '\n';
  return [...loads, { kind: 'file', id: `file:${MODULES_LOAD_PATH}`, path: MODULES_LOAD_PATH, mode: '0644', content }];
}
