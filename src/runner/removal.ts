/**
 * `down`: the removal of everything lbprov owns, back to the kernel settings recorded before its
 * first up. The plan is a diff like any other (desired: only the recorded settings), applied
 * through the same loop as `up`.
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { HostPlan } from '../model/plan.js';
import type { Resource } from '../model/resources.js';
import { SYSCTL_ORIGINAL_PATH } from '../model/paths.js';
import { RemoteError } from '../errors.js';
import { diffResources } from '../diff/diff.js';
import { removalState } from '../render/persistence.js';
import { leftoversScript } from '../apply/removal.js';
import type { GatewayPlanned } from './gateway.js';

export function planRemovalFromFacts(gw: GatewaySpec, facts: HostFacts): { desired: Resource[]; plan: HostPlan } {
  const { desired, current } = removalState(facts);
  const notes = [...facts.warnings];
  if (!facts.owned.some((r) => r.kind === 'file' && r.path === SYSCTL_ORIGINAL_PATH) && facts.owned.some((r) => r.kind === 'file')) {
    notes.push(`no record of the kernel settings before lbprov (${SYSCTL_ORIGINAL_PATH}): they stay as they are`);
  }
  return { desired, plan: { gateway: gw.name, changes: diffResources(desired, current), fingerprint: facts.fingerprint, notes } };
}

/** After the removal applied, over the same connection. */
export async function removeLeftovers(planned: GatewayPlanned): Promise<void> {
  const cleanup = await planned.session.run('sh -s', { stdin: leftoversScript(planned.request.services), privileged: true, mutating: true });
  if (cleanup.code !== 0) {
    throw new RemoteError("removing the monitor's runtime files failed", { host: planned.gateway.name, stderr: cleanup.stderr.trim(), exitCode: cleanup.code }, 'apply');
  }
}
