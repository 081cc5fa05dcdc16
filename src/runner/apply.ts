/**
 * Applying a plan to one gateway as a transaction that survives a dropped connection, then the
 * confirm over a new connection (or the gateway's own revert when lbprov cannot get back in).
 */
import type { GatewaySpec } from '../model/inventory.js';
import { knownFile, type FactsRequest, type HostFacts } from '../model/facts.js';
import type { FileResource } from '../model/resources.js';
import type { HostPlan } from '../model/plan.js';
import type { ResourceChange } from '../model/changes.js';
import { RemoteError } from '../errors.js';
import type { RemoteSession } from '../ssh/session.js';
import { buildFactsScript } from '../facts/script.js';
import { parseFacts } from '../facts/parse.js';
import { sameResource } from '../diff/diff.js';
import { planSteps } from '../apply/steps.js';
import { parseApplyOutput } from '../apply/script.js';
import { buildTransaction, confirmScript, parseDecision, resultScript, revertNowScript } from '../apply/transaction.js';
import { connect, readFacts, type GatewayPlanned, type RunContext } from './gateway.js';

/** Changes in `plan` that the state in `facts` does not show yet. */
export function unappliedChanges(changes: readonly ResourceChange[], facts: HostFacts): ResourceChange[] {
  const now = new Map(facts.owned.map((r) => [r.id, r]));
  return changes.filter((c) => {
    // Loaded modules are kernel state, not owned resources: a load shows in /proc/modules.
    if (c.kind === 'module') return c.after !== null && !(facts.modules.loaded ?? []).includes(c.after.module);
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
  const { gateway: gw, session } = planned;
  const steps = planSteps(plan.changes);
  const request = requestAfterApply(planned);
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
  const outcome = output !== null ? parseApplyOutput(output, tx.marker, steps) : null;
  // Output with neither its result line nor an exit status was cut (the channel closed under
  // load): the outcome is unknown, as if the connection had been lost, and is read over a new one.
  if (outcome !== null && code === null && !outcome.complete) output = null;
  if (output !== null && outcome !== null) {
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
  const after = output !== null ? readBack(gw.name, output, verify.marker, request) : null;
  if (opts.confirmTimeoutS === null) {
    if (!after) throw new RemoteError('lost the connection (or the state read back) during the apply; its outcome is unknown (run plan to see the state)', { host: gw.name }, 'unreachable');
    assertConverged(gw, plan, after);
    return { after, outcome: 'applied' };
  }
  return confirmOverNewConnection(planned, plan, ctx, opts.confirmTimeoutS, started, after);
}

/** The facts request once the plan's files are written: they come back as hashes, not whole. */
function requestAfterApply(planned: GatewayPlanned): FactsRequest {
  const written = planned.desired.filter((r): r is FileResource => r.kind === 'file').map((f) => knownFile(f.path, f.content));
  return { ...planned.request, knownFiles: [...(planned.request.knownFiles ?? []), ...written] };
}

/**
 * The state the apply read back after its last step; null when that output was cut (a connection
 * closing under load): the confirm then reads the state again instead of taking a cut read-back
 * for a state in which nothing matches.
 */
function readBack(host: string, output: string, marker: string, request: GatewayPlanned['request']): HostFacts | null {
  try {
    return parseFacts(host, output, marker, request);
  } catch (e) {
    if (e instanceof RemoteError && e.reason === 'facts') return null;
    throw e;
  }
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
  const { gateway: gw } = planned;
  const request = requestAfterApply(planned);
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
    const sent = await session.run('sh -s', { stdin: left.length > 0 ? revertNowScript(ctx.id) : confirmScript(ctx.id), privileged: true, mutating: true });
    const decision = parseDecision(sent.stdout);
    if (!decision) {
      throw new RemoteError(`the confirm-or-revert decision was not acknowledged (exit ${sent.code}); run plan to see the state`, { host: gw.name, stderr: `${sent.stdout}\n${sent.stderr}`.trim() }, 'apply');
    }
    // Too late: the gateway's timer decided while the controller could not get back in. What the
    // state read meanwhile showed is its revert at work, not a mismatch.
    if (decision.by === 'timer') throw timerDecided(gw.name, decision.result, timeoutS, started);
    if (decision.by === 'apply') {
      throw new RemoteError(`the apply ended "${decision.result}" on the gateway, but its output was lost with the connection (see /var/lib/lbprov/txn/${ctx.id.run})`, { host: gw.name }, 'apply');
    }
    if (left.length > 0) {
      throw new RemoteError(
        `state after apply does not match the plan: ${left.length} of ${plan.changes.length} change(s) not in place (${left.map((c) => c.id).join(', ')}); ${decision.result}`,
        { host: gw.name },
        'apply',
      );
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

/** The gateway's confirm timer decided before the controller's new connection could. */
function timerDecided(host: string, result: string, timeoutS: number, started: number): RemoteError {
  const late = `the controller came back ${Math.round((Date.now() - started) / 1000)} s after the apply began, past its ${timeoutS} s confirm timeout`;
  const message =
    result === 'reverted'
      ? `reverted: ${late}; the gateway restored its previous state by itself`
      : result === 'revert-failed'
        ? `${late}; the gateway's own revert FAILED (see /var/lib/lbprov/txn on the gateway)`
        : `${late}; the gateway's transaction is "${result || 'still running'}" after a minute (run plan to see the state)`;
  return new RemoteError(message, { host }, 'apply');
}
