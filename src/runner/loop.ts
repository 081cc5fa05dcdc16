/**
 * The one loop of every command that reads gateways and may change them (plan, up, down, check):
 * read each gateway over its one connection (facts and its plan, holding its lock when it may
 * change), show the plans, ask, apply with confirm-or-revert, and give each gateway its result.
 * The loop owns every gateway's session: opened when the gateway is read, closed once that
 * gateway is done with, whatever happened on the way.
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostPlan } from '../model/plan.js';
import type { RemoteSession } from '../ssh/session.js';
import { connect, planOver, type GatewayPlanned, type Planner, type RunContext } from './gateway.js';
import { applyPlan, type ApplyOptions } from './apply.js';
import { describeError, forEachGateway, resultOf, statusOfError, type HostResult } from './fleet.js';

export interface FleetApply {
  options: ApplyOptions;
  /** Over the same connection, after a successful apply (down's cleanup of runtime files). */
  after?: (planned: GatewayPlanned) => Promise<void>;
  onStart?: (pending: number) => void | Promise<void>;
  /** Each time a gateway's apply ends, whatever its result. */
  onApplied?: (done: number, total: number) => void;
  onEnd?: () => void;
}

export interface FleetRun {
  /** Take each gateway's lock while reading its facts (the commands that change gateways). */
  lock: boolean;
  planner: Planner;
  /** The plan to apply instead of the fresh one (a saved plan); throws a RemoteError to refuse the gateway. */
  substitute?: (planned: GatewayPlanned) => HostPlan;
  onRead?: (done: number, total: number) => void;
  /** With every gateway read: show the plans, decide. false: nothing is applied (pending gateways are not-started). */
  review?: (plans: HostPlan[], pending: number) => Promise<boolean>;
  /** Absent: the run only reads (plan, check, down --check). */
  apply?: FleetApply;
  /**
   * Keep every gateway's facts in the outcomes (check reports from them). Otherwise a gateway's
   * facts and desired state are dropped once it is planned, or applied: a thousand gateways'
   * facts would otherwise all be alive until the end of the run.
   */
  keepPlanned?: boolean;
}

export interface FleetOutcome {
  gateway: GatewaySpec;
  result: HostResult;
  /** What was read, when the gateway could be read and the run keeps it (keepPlanned). */
  planned?: GatewayPlanned;
}

interface Read {
  /** Kept only to apply it, or when the run keeps it. */
  planned?: GatewayPlanned;
  /** What is applied: the fresh plan, or the saved one standing in for it. */
  plan: HostPlan;
}

export async function runFleet(gateways: readonly GatewaySpec[], ctx: RunContext, forks: number, run: FleetRun): Promise<FleetOutcome[]> {
  const sessions = new Map<string, RemoteSession>();
  const close = async (name: string) => {
    const session = sessions.get(name);
    sessions.delete(name);
    await session?.close();
  };
  const outcomes = new Map<string, FleetOutcome>();
  let done = 0;
  try {
    const reads = await forEachGateway(gateways, forks, async (gw): Promise<Read> => {
      try {
        const session = await connect(gw, ctx);
        sessions.set(gw.name, session);
        const planned = await planOver(session, gw, ctx, run.lock, run.planner);
        let plan: HostPlan;
        try {
          plan = run.substitute ? run.substitute(planned) : planned.plan;
        } catch (refusal) {
          outcomes.set(gw.name, { gateway: gw, ...(run.keepPlanned ? { planned } : {}), result: { gateway: gw.name, status: statusOfError(refusal), error: describeError(refusal), durationMs: 0 } });
          throw refusal;
        }
        // Kept open only to apply: closing releases the lock the facts took.
        const applies = run.apply !== undefined && plan.changes.length > 0;
        if (!applies) await close(gw.name);
        return { plan, ...(applies || run.keepPlanned ? { planned } : {}) };
      } catch (error) {
        await close(gw.name);
        throw error;
      } finally {
        run.onRead?.(++done, gateways.length);
      }
    });
    // Gateways to apply; each one's facts and desired state are let go once it is applied.
    const pending = new Map<GatewaySpec, { planned?: GatewayPlanned; plan: HostPlan; durationMs: number }>();
    const shown: HostPlan[] = [];
    const kept = (planned: GatewayPlanned | undefined) => (run.keepPlanned && planned ? { planned } : {});
    for (const read of reads) {
      const gateway = read.gateway;
      if (!read.ok) {
        if (!outcomes.has(gateway.name)) outcomes.set(gateway.name, { gateway, result: resultOf(read, 'failed') });
        else outcomes.get(gateway.name)!.result.durationMs = read.durationMs;
        continue;
      }
      const { planned, plan } = read.value;
      shown.push(plan);
      if (run.apply && plan.changes.length > 0 && planned) pending.set(gateway, { planned, plan, durationMs: read.durationMs });
      else outcomes.set(gateway.name, { gateway, ...kept(planned), result: { gateway: gateway.name, status: plan.changes.length > 0 ? 'changed' : 'ok', plan, durationMs: read.durationMs } });
    }
    // What is still needed now lives in outcomes and pending: the reads would keep every facts alive.
    reads.length = 0;

    const proceed = (await run.review?.(shown, pending.size)) ?? true;
    if (pending.size > 0 && run.apply && proceed) {
      const { options, after } = run.apply;
      const total = pending.size;
      await run.apply.onStart?.(total);
      let appliedSoFar = 0;
      const applied = await forEachGateway([...pending.keys()], forks, async (gw) => {
        const p = pending.get(gw)!;
        const planned = p.planned!;
        try {
          await applyPlan(planned, p.plan, ctx, options);
          await after?.(planned);
        } finally {
          if (!run.keepPlanned) delete p.planned;
          await close(gw.name);
          run.apply?.onApplied?.(++appliedSoFar, total);
        }
      });
      run.apply.onEnd?.();
      for (const a of applied) {
        const p = pending.get(a.gateway)!;
        outcomes.set(a.gateway.name, { gateway: a.gateway, ...kept(p.planned), result: resultOf({ ...a, durationMs: a.durationMs + p.durationMs }, 'changed', p.plan) });
      }
    } else {
      for (const [gateway, p] of pending) {
        outcomes.set(gateway.name, { gateway, ...kept(p.planned), result: { gateway: gateway.name, status: 'not-started', plan: p.plan, durationMs: 0 } });
      }
    }
    return gateways.map((gw) => {
      const outcome = outcomes.get(gw.name)!;
      const retries = ctx.connectRetries.get(gw.name);
      if (retries !== undefined) outcome.result.connectRetries = retries;
      return outcome;
    });
  } finally {
    await Promise.all([...sessions.keys()].map(close));
  }
}

/** One gateway read, planned and (when it has changes) applied without asking: a wave of a rollout. */
export async function planAndApply(gw: GatewaySpec, ctx: RunContext, run: Omit<FleetRun, 'review' | 'onRead'>): Promise<HostResult> {
  return (await runFleet([gw], ctx, 1, run))[0]!.result;
}
