/**
 * Prerequisite checks: pure functions of a gateway's facts, its inventory
 * entry and the resources rendered for it. `lbprov check` prints them; plan
 * and up add the non-ok ones to the plan's notes and stop a gateway with a
 * failing one before anything on it changes.
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { Resource } from '../model/resources.js';
import type { CheckResult } from '../model/checks.js';
import { RemoteError } from '../errors.js';
import { firewallBackend } from '../firewall/index.js';
import { checkInterfaces, checkSysctls, checkTools } from './host.js';

export type { CheckResult, CheckStatus } from '../model/checks.js';

/** `desired` null: the resources could not be rendered (the caller reports why); the rest is still checked. */
export function runChecks(gw: GatewaySpec, facts: HostFacts, desired: readonly Resource[] | null): CheckResult[] {
  const resources = desired ?? [];
  const backend = firewallBackend(facts.firewall.chosen);
  return [
    { id: 'firewall', status: 'ok', message: facts.firewall.reason.replace(/^firewall: /, '') },
    ...backend.checks(gw, facts, resources),
    ...checkTools(facts, resources),
    ...checkSysctls(facts, resources),
    ...checkInterfaces(gw, facts),
  ];
}

export function formatCheckNote(r: CheckResult): string {
  return `check ${r.status}: ${r.message}${r.remedy && r.status !== 'ok' ? ` (${r.remedy})` : ''}`;
}

/**
 * For plan and up, after rendering: the notes to add to the plan (every
 * result that is not ok), or a RemoteError (reason 'prerequisite') naming
 * every failing check, so the gateway stops before any change.
 */
export function enforcePrerequisites(gw: GatewaySpec, facts: HostFacts, desired: readonly Resource[]): string[] {
  const results = runChecks(gw, facts, desired);
  const failed = results.filter((r) => r.status === 'fail');
  if (failed.length > 0) {
    throw new RemoteError(
      `prerequisites missing, nothing changed: ${failed.map((r) => `${r.message}${r.remedy ? ` (${r.remedy})` : ''}`).join('; ')}`,
      { host: gw.name, resource: failed.map((r) => r.id).join(', ') },
      'prerequisite',
    );
  }
  return results.filter((r) => r.status !== 'ok').map(formatCheckNote);
}
