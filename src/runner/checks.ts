/** `lbprov check`'s per-gateway result: the prerequisite checks of what the balancer would be on it. */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { CheckResult } from '../model/checks.js';
import type { Resource } from '../model/resources.js';
import type { HostPlan } from '../model/plan.js';
import { LbprovError } from '../errors.js';
import { renderDesiredState } from '../render/desired.js';
import { runChecks } from '../checks/index.js';
import type { Planner, RunContext } from './gateway.js';

/** The checks of one gateway; a render that fails (a missing piece it needs) is one more failed check. */
export function checksFor(gw: GatewaySpec, ctx: Pick<RunContext, 'playbook' | 'templates'>, facts: HostFacts): CheckResult[] {
  let desired: Resource[] | null = null;
  let renderError: CheckResult | null = null;
  try {
    desired = renderDesiredState(gw, ctx.playbook, ctx.templates, facts);
  } catch (e) {
    if (!(e instanceof LbprovError)) throw e;
    renderError = { id: 'render', status: 'fail', message: `the balancer cannot be rendered for this gateway: ${e.message}` };
  }
  const results = runChecks(gw, facts, desired);
  return renderError ? [...results, renderError] : results;
}

/** `check` reads and changes nothing: its "plan" is empty, the checks come from the facts. */
export const readOnlyPlanner: Planner = (gw, facts) => {
  const plan: HostPlan = { gateway: gw.name, changes: [], fingerprint: facts.fingerprint, notes: [] };
  return { desired: [], plan };
};
