/**
 * One gateway, start to finish: connect once, read facts in one round trip,
 * render and diff locally, and (for up) apply in one more round trip.
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { HostPlan } from '../model/plan.js';
import type { Resource } from '../model/resources.js';
import { RemoteError } from '../errors.js';
import { openSession, type RemoteSession, type CommandTrace } from '../ssh/session.js';
import { buildFactsScript, parseFacts, type FactsRequest } from '../facts/gather.js';
import { factsRequestFor, renderDesiredState } from '../render/desired.js';
import type { Playbook } from '../render/playbook.js';
import type { TemplateSet } from '../render/templates.js';
import { diffResources } from '../diff/diff.js';
import { planSteps } from '../apply/steps.js';
import { buildApplyScript, parseApplyOutput } from '../apply/script.js';

export interface RunContext {
  playbook: Playbook;
  templates: TemplateSet;
  trace?: CommandTrace;
  acceptNew?: boolean;
}

export interface GatewayPlanned {
  gateway: GatewaySpec;
  session: RemoteSession;
  facts: HostFacts;
  desired: Resource[];
  plan: HostPlan;
  request: FactsRequest;
}

export async function readFacts(session: RemoteSession, gw: GatewaySpec, request: FactsRequest): Promise<HostFacts> {
  const { script, marker } = buildFactsScript(request);
  const result = await session.run('sh -s', { stdin: script, privileged: true });
  if (result.code !== 0) {
    throw new RemoteError(`facts script exited ${result.code}`, { host: gw.name, command: 'sh -s (facts)', stderr: result.stderr.trim(), exitCode: result.code }, 'facts');
  }
  return parseFacts(gw.name, result.stdout, marker, request);
}

export function planFromFacts(gw: GatewaySpec, ctx: RunContext, facts: HostFacts): { desired: Resource[]; plan: HostPlan } {
  const desired = renderDesiredState(gw, ctx.playbook, ctx.templates, facts);
  const changes = diffResources(desired, facts.owned);
  return { desired, plan: { gateway: gw.name, changes, fingerprint: facts.fingerprint, notes: [...facts.warnings] } };
}

/** Opens the gateway's one connection and plans; the caller closes `session`. */
export async function planGateway(gw: GatewaySpec, ctx: RunContext): Promise<GatewayPlanned> {
  const request = factsRequestFor(gw, ctx.playbook, ctx.templates);
  const session = await openSession(gw.name, gw.ssh, { acceptNew: ctx.acceptNew, trace: ctx.trace });
  try {
    const facts = await readFacts(session, gw, request);
    return { gateway: gw, session, facts, request, ...planFromFacts(gw, ctx, facts) };
  } catch (e) {
    await session.close();
    throw e;
  }
}

export interface ApplyResult {
  /** Facts read right after the apply, in the same round trip. */
  after: HostFacts;
  /** Changes still pending after the apply (should be none). */
  remaining: number;
}

/** Applies `plan` over the open session; throws RemoteError (reason 'apply') after a rollback. */
export async function applyPlan(planned: GatewayPlanned, plan: HostPlan, ctx: RunContext): Promise<ApplyResult> {
  const { gateway: gw, session, request } = planned;
  const steps = planSteps(plan.changes);
  const verify = buildFactsScript(request);
  const { script, marker } = buildApplyScript(steps, verify.script);
  const result = await session.run('sh -s', { stdin: script, privileged: true, mutating: true });
  const outcome = parseApplyOutput(result.stdout, marker, steps);
  if (!outcome.applied) {
    const failed = outcome.failedStep;
    const undone = outcome.undoFailures.length === 0 ? 'rolled back' : `rollback incomplete (steps ${outcome.undoFailures.join(', ')} could not be undone)`;
    throw new RemoteError(
      failed ? `apply failed at step ${failed.index} (${failed.description}); ${undone}` : `apply did not complete (exit ${result.code}); ${undone}`,
      { host: gw.name, resource: failed?.description, stderr: (failed?.output ?? result.stderr).trim(), exitCode: result.code },
      'apply',
    );
  }
  const after = parseFacts(gw.name, result.stdout, verify.marker, request);
  const remaining = planFromFacts(gw, ctx, after).plan.changes.length;
  return { after, remaining };
}
