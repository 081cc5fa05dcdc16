/**
 * One gateway, start to finish: connect once, read facts in one round trip,
 * render and diff locally; for up, apply in one more round trip as a
 * transaction that survives a dropped connection, then confirm over a new
 * connection (or let the gateway revert by itself).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { GatewaySpec, SshSettings } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { HostPlan, ResourceChange } from '../model/plan.js';
import type { Resource } from '../model/resources.js';
import { RemoteError } from '../errors.js';
import { openSession, type SessionCache, type RemoteSession, type CommandTrace } from '../ssh/session.js';
import { resolveSshSettings } from '../ssh/ssh-config.js';
import { buildFactsScript, parseFacts, scriptStderr, type FactsRequest } from '../facts/gather.js';
import { factsRequestFor, renderDesiredState } from '../render/desired.js';
import type { Playbook } from '../render/playbook.js';
import type { TemplateSet } from '../render/templates.js';
import { diffResources, sameResource } from '../diff/diff.js';
import { planSteps } from '../apply/steps.js';
import { chooseMechanism } from '../render/failover-view.js';
import { enforcePrerequisites } from '../checks/index.js';
import { parseApplyOutput } from '../apply/script.js';
import {
  EXIT_LOCKED,
  acquireLockScript,
  buildTransaction,
  confirmScript,
  resultScript,
  revertNowScript,
  type RunIdentity,
} from '../apply/transaction.js';

export interface RunContext {
  playbook: Playbook;
  templates: TemplateSet;
  trace?: CommandTrace;
  acceptNew?: boolean;
  id: RunIdentity;
  /** Seconds a run waits for another run's lock on a gateway. */
  lockWaitS: number;
  /** Seconds one connection to a gateway may last, whatever its commands do. */
  hostTimeoutS: number;
  /** What the facts script reads per gateway, worked out once per run (see factsRequestOf). */
  factsRequests: Map<string, FactsRequest>;
  /** known_hosts and identities, read once per run. */
  sessionCache: SessionCache;
}

export interface GatewayPlanned {
  gateway: GatewaySpec;
  session: RemoteSession;
  facts: HostFacts;
  desired: Resource[];
  plan: HostPlan;
  request: FactsRequest;
  /** This run holds the gateway's lock (taken while reading facts for up/down). */
  locked: boolean;
}

/** The gateway's facts request, rendered once per run and reused by every round trip. */
export function factsRequestOf(gw: GatewaySpec, ctx: Pick<RunContext, 'playbook' | 'templates' | 'factsRequests'>): FactsRequest {
  let request = ctx.factsRequests.get(gw.name);
  if (!request) {
    request = factsRequestFor(gw, ctx.playbook, ctx.templates);
    ctx.factsRequests.set(gw.name, request);
  }
  return request;
}

/**
 * The inventory's SSH settings, with the user's ssh config (~/.ssh/config, or
 * LBPROV_SSH_CONFIG) filling in what it leaves unset. Without such a file
 * there is nothing to ask `ssh -G`, and a fleet run saves a process per gateway.
 */
export async function connect(gw: GatewaySpec, ctx: RunContext): Promise<RemoteSession> {
  const configFile = process.env['LBPROV_SSH_CONFIG'] || undefined;
  let ssh = gw.ssh;
  if (configFile || existsSync(join(homedir(), '.ssh', 'config'))) {
    const explicit = new Set(gw.sshExplicit ?? (Object.keys(gw.ssh) as (keyof SshSettings)[]));
    ssh = await resolveSshSettings(gw.name, gw.ssh, explicit, { configFile });
  }
  return openSession(gw.name, ssh, { acceptNew: ctx.acceptNew, trace: ctx.trace, lifetimeMs: ctx.hostTimeoutS * 1000, cache: ctx.sessionCache });
}

export async function readFacts(session: RemoteSession, gw: GatewaySpec, request: FactsRequest, lock?: { ctx: RunContext }): Promise<HostFacts> {
  const prelude = lock ? acquireLockScript(lock.ctx.id, lock.ctx.lockWaitS) : '';
  const { script, marker } = buildFactsScript(request, { prelude });
  const result = await session.run('sh -s', { stdin: script, privileged: true, timeoutMs: lock ? (lock.ctx.lockWaitS + 60) * 1000 : undefined });
  if (result.code === EXIT_LOCKED) {
    const owner = /@@lbprov-locked (.*)/.exec(result.stdout)?.[1]?.trim() ?? 'unknown owner';
    throw new RemoteError(`locked by another lbprov run (${describeOwner(owner)})`, { host: gw.name }, 'locked');
  }
  if (result.code !== 0) {
    throw new RemoteError(`facts script exited ${result.code}`, { host: gw.name, command: 'sh -s (facts)', stderr: scriptStderr(result.stderr, marker), exitCode: result.code }, 'facts');
  }
  return parseFacts(gw.name, result.stdout, marker, request, result.stderr);
}

function describeOwner(owner: string): string {
  const kv = Object.fromEntries(owner.split(/\s+/).map((p) => p.split('=')).filter((p) => p.length === 2)) as Record<string, string>;
  const since = Number(kv.since);
  const when = Number.isFinite(since) && since > 0 ? new Date(since * 1000).toISOString() : '?';
  return `controller ${kv.controller ?? '?'} pid ${kv.controller_pid ?? '?'}, since ${when}`;
}

export function planFromFacts(gw: GatewaySpec, ctx: Pick<RunContext, 'playbook' | 'templates'>, facts: HostFacts): { desired: Resource[]; plan: HostPlan } {
  const desired = renderDesiredState(gw, ctx.playbook, ctx.templates, facts);
  const changes = diffResources(desired, facts.owned);
  // A gateway that lacks what the balancer needs stops here, before anything changes.
  const notes = [chooseMechanism(gw, facts).note, ...enforcePrerequisites(gw, facts, desired), ...facts.warnings];
  return { desired, plan: { gateway: gw.name, changes, fingerprint: facts.fingerprint, notes } };
}

/** How a command turns a gateway's facts into its plan: the balancer's by default, `down` its removal. */
export type Planner = (gw: GatewaySpec, facts: HostFacts) => { desired: Resource[]; plan: HostPlan };

/**
 * Opens the gateway's one connection and plans; `lock` takes the gateway's
 * lock in the same round trip. The caller closes `session`.
 */
export async function planGateway(gw: GatewaySpec, ctx: RunContext, lock = false, planner: Planner = (g, facts) => planFromFacts(g, ctx, facts)): Promise<GatewayPlanned> {
  const request = factsRequestOf(gw, ctx);
  const session = await connect(gw, ctx);
  try {
    const facts = await readFacts(session, gw, request, lock ? { ctx } : undefined);
    return { gateway: gw, session, facts, request, locked: lock, ...planner(gw, facts) };
  } catch (e) {
    await session.close();
    throw e;
  }
}

/** Changes in `plan` that the state in `facts` does not show yet. */
export function unappliedChanges(changes: readonly ResourceChange[], facts: HostFacts): ResourceChange[] {
  const now = new Map(facts.owned.map((r) => [r.id, r]));
  return changes.filter((c) => {
    // Loaded modules are kernel state, not owned resources: a load shows in /proc/modules.
    if (c.kind === 'module') return c.after !== null && !(facts.modules.loaded ?? []).includes((c.after as { module: string }).module);
    const current = now.get(c.id);
    return c.after ? !current || !sameResource(current, c.after) : current !== undefined;
  });
}

export interface ApplyOptions {
  /** Seconds before an unconfirmed apply reverts itself; null: no confirm step. */
  confirmTimeoutS: number | null;
}

export interface ApplyResult {
  after: HostFacts;
  /** 'applied' (no confirm step) or 'confirmed'. */
  outcome: 'applied' | 'confirmed';
}

/** Applies `plan` as a transaction; throws RemoteError (reason 'apply') when it was rolled back or reverted. */
export async function applyPlan(planned: GatewayPlanned, plan: HostPlan, ctx: RunContext, opts: ApplyOptions): Promise<ApplyResult> {
  const { gateway: gw, session, request } = planned;
  const steps = planSteps(plan.changes);
  // Runs inside the transaction, whose folder has room for its scratch file.
  const verify = buildFactsScript(request, { errorFile: '"$t/facts.err"' });
  const tx = buildTransaction({
    id: ctx.id,
    steps,
    verifyScript: verify.script,
    confirmTimeoutS: opts.confirmTimeoutS,
    record: { run: ctx.id.run, by: ctx.id.controller, gateway: gw.name, changes: plan.changes.map((c) => `${c.action} ${c.id}`) },
  });
  const started = Date.now();
  let output: string | null = null;
  let code: number | null = null;
  let stderr = '';
  try {
    const result = await session.run('sh -s', { stdin: tx.script, privileged: true, mutating: true });
    output = result.stdout;
    code = result.code;
    stderr = result.stderr;
  } catch (e) {
    // The connection died during the apply: the gateway finishes (or rolls back) on its own.
    if (!(e instanceof RemoteError) || !['timeout', 'unreachable'].includes(e.reason)) throw e;
  }
  if (output !== null) {
    const outcome = parseApplyOutput(output, tx.marker, steps);
    if (!outcome.applied) {
      const failed = outcome.failedStep;
      const undone = outcome.undoFailures.length === 0 ? 'rolled back' : `rollback incomplete (steps ${outcome.undoFailures.join(', ')} could not be undone)`;
      throw new RemoteError(
        failed ? `apply failed at step ${failed.index} (${failed.description}); ${undone}` : `apply did not complete (exit ${code}); ${undone}`,
        { host: gw.name, resource: failed?.description, stderr: (failed?.output ?? stderr).trim(), exitCode: code },
        'apply',
      );
    }
  }
  const after = output !== null ? parseFacts(gw.name, output, verify.marker, request) : null;
  if (opts.confirmTimeoutS === null) {
    if (!after) throw new RemoteError('lost the connection during the apply; its outcome is unknown (run plan to see the state)', { host: gw.name }, 'unreachable');
    assertConverged(gw, plan, after);
    return { after, outcome: 'applied' };
  }
  return confirmOverNewConnection(planned, plan, ctx, opts.confirmTimeoutS, started, after);
}

function assertConverged(gw: GatewaySpec, plan: HostPlan, facts: HostFacts): void {
  const left = unappliedChanges(plan.changes, facts);
  if (left.length > 0) {
    throw new RemoteError(`applied, but ${left.length} change(s) do not show afterwards: ${left.map((c) => c.id).join(', ')}`, { host: gw.name }, 'apply');
  }
}

/**
 * The proof that the gateway is still reachable: a brand-new connection that
 * runs a privileged command. The state it confirms is the one the apply read
 * back right after its last step (`verified`); when that output was lost with
 * the first connection, the new one reads the state before deciding.
 */
async function confirmOverNewConnection(
  planned: GatewayPlanned,
  plan: HostPlan,
  ctx: RunContext,
  timeoutS: number,
  started: number,
  verified: HostFacts | null,
): Promise<ApplyResult> {
  const { gateway: gw, request } = planned;
  let session: RemoteSession;
  try {
    session = await connect(gw, ctx);
  } catch (e) {
    return reportLostGateway(planned, ctx, timeoutS, started, e);
  }
  try {
    const facts = verified ?? (await readFacts(session, gw, request, { ctx }));
    const left = unappliedChanges(plan.changes, facts);
    // Through sh like every script: the login shell of the account may not be a POSIX shell.
    const decision = (await session.run('sh -s', { stdin: left.length > 0 ? revertNowScript(ctx.id) : confirmScript(ctx.id), privileged: true, mutating: true })).stdout.trim();
    if (decision.startsWith('already ')) {
      // Too late: the gateway's timer decided while the controller could not get back in.
      const result = decision.slice('already '.length);
      throw new RemoteError(
        result === 'reverted'
          ? 'reverted: lost connectivity after apply; the gateway restored its previous state by itself'
          : `lost connectivity after apply; the gateway's confirm timer reports "${result}"`,
        { host: gw.name },
        'apply',
      );
    }
    if (left.length > 0) {
      throw new RemoteError(`state after apply does not match the plan (${left.map((c) => c.id).join(', ')}); ${decision.replace(/^decided /, '')}`, { host: gw.name }, 'apply');
    }
    return { after: facts, outcome: 'confirmed' };
  } catch (e) {
    if (e instanceof RemoteError && ['timeout', 'unreachable'].includes(e.reason)) return reportLostGateway(planned, ctx, timeoutS, started, e);
    throw e;
  } finally {
    await session.close();
  }
}

/** Waits for the gateway's own revert, then tries once more to read what it did. */
async function reportLostGateway(planned: GatewayPlanned, ctx: RunContext, timeoutS: number, started: number, cause: unknown): Promise<never> {
  const { gateway: gw } = planned;
  const wait = started + timeoutS * 1000 + 2000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  let result = '';
  try {
    const session = await connect(gw, ctx);
    try {
      result = (await session.run('sh -s', { stdin: resultScript(ctx.id), privileged: true })).stdout.trim();
    } finally {
      await session.close();
    }
  } catch {
    result = '';
  }
  const why = cause instanceof Error ? cause.message : String(cause);
  const message =
    result === 'reverted'
      ? 'reverted: lost connectivity after apply; the gateway restored its previous state by itself'
      : result
        ? `lost connectivity after apply; the gateway reports "${result}"`
        : `reverted: lost connectivity after apply; the gateway restores its previous state by itself ${timeoutS}s after the apply (not verified: still unreachable)`;
  throw new RemoteError(message, { host: gw.name, stderr: why }, 'apply');
}
