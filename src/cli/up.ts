import type { HostPlan } from '../model/plan.js';
import { applyPlan, planGateway, type GatewayPlanned, type RunContext } from '../runner/gateway.js';
import { describeError, forEachGateway, statusOfError, type HostResult } from '../runner/fleet.js';
import { describeDrift, loadSavedPlan } from '../runner/saved-plan.js';
import { appendRunLog } from '../runner/run-log.js';
import { coloursFor, formatHostPlan } from '../report/plan-text.js';
import { formatRecap } from '../report/recap.js';
import { InputError, RemoteError } from '../errors.js';
import { loadCommon, type CommonOptions } from './context.js';
import { askToProceed, EXIT_ERROR, EXIT_OK, progress } from './output.js';

export interface UpOptions extends CommonOptions {
  yes?: boolean;
  json?: boolean;
  /** false with --no-confirm. */
  confirm?: boolean;
  confirmTimeout?: string;
  plan?: string;
}

interface Pending {
  planned: GatewayPlanned;
  plan: HostPlan;
}

export async function upCommand(opts: UpOptions): Promise<number> {
  const startedAt = new Date().toISOString();
  const { inventory, gateways, ctx, forks } = loadCommon(opts);
  const confirmTimeoutS = opts.confirm === false ? null : confirmTimeout(opts.confirmTimeout);
  const saved = opts.plan ? loadSavedPlan(opts.plan) : null;
  const c = coloursFor(process.stdout);
  const results = new Map<string, HostResult>();
  const pending: Pending[] = [];

  const spinner = progress(`reading ${gateways.length} gateway(s)`, !!opts.json).start();
  const planned = await forEachGateway(gateways, forks, (gw) => planGateway(gw, ctx, true));
  spinner.stop();
  for (const o of planned) {
    const name = o.gateway.name;
    if (!o.ok) {
      results.set(name, { gateway: name, status: statusOfError(o.error), error: describeError(o.error), durationMs: o.durationMs });
      continue;
    }
    const p = o.value;
    let plan = p.plan;
    if (saved) {
      const savedHost = saved.hosts.find((h) => h.gateway === name);
      const refusal = !savedHost
        ? 'not in the saved plan'
        : savedHost.fingerprint !== p.facts.fingerprint
          ? `state changed since the plan was made: ${describeDrift(savedHost, p.plan).join('; ')}`
          : null;
      if (refusal || !savedHost) {
        await p.session.close();
        const error = new RemoteError(`refusing the saved plan: ${refusal}`, { host: name }, 'apply');
        results.set(name, { gateway: name, status: 'failed', error: describeError(error), durationMs: o.durationMs });
        continue;
      }
      plan = savedHost;
    }
    if (!opts.json) process.stdout.write(formatHostPlan(plan, c) + '\n\n');
    if (plan.changes.length === 0) {
      // Closing the connection releases the lock taken with the facts.
      results.set(name, { gateway: name, status: 'ok', plan, durationMs: o.durationMs });
      await p.session.close();
    } else {
      pending.push({ planned: p, plan });
    }
  }

  try {
    if (pending.length > 0 && !(await askToProceed(`Apply these changes to ${pending.length} gateway(s)?`, opts.yes))) {
      for (const p of pending) {
        results.set(p.plan.gateway, { gateway: p.plan.gateway, status: 'not-started', plan: p.plan, durationMs: 0 });
      }
    } else if (pending.length > 0) {
      const applying = progress(`applying to ${pending.length} gateway(s)`, !!opts.json).start();
      const applied = await forEachGateway(pending.map((p) => p.planned.gateway), forks, async (gw) => {
        const p = pending.find((x) => x.planned.gateway === gw)!;
        return applyPlan(p.planned, p.plan, ctx, { confirmTimeoutS });
      });
      applying.stop();
      for (const a of applied) {
        const plan = pending.find((p) => p.planned.gateway === a.gateway)!.plan;
        results.set(
          a.gateway.name,
          a.ok
            ? { gateway: a.gateway.name, status: 'changed', plan, durationMs: a.durationMs }
            : { gateway: a.gateway.name, status: statusOfError(a.error), plan, error: describeError(a.error), durationMs: a.durationMs },
        );
      }
    }
  } finally {
    await Promise.all(pending.map((p) => p.planned.session.close()));
  }

  const ordered = gateways.map((g) => results.get(g.name)!);
  logRun(ctx, 'up', inventory.path, startedAt, ordered);
  if (opts.json) process.stdout.write(JSON.stringify({ run: ctx.id.run, results: ordered }, null, 2) + '\n');
  else process.stdout.write(formatRecap(ordered, c) + '\n');
  return ordered.some((r) => r.status === 'failed' || r.status === 'unreachable' || r.status === 'not-started') ? EXIT_ERROR : EXIT_OK;
}

export function logRun(ctx: RunContext, command: string, inventory: string, startedAt: string, results: HostResult[]): void {
  appendRunLog({ run: ctx.id.run, command, inventory, startedAt, finishedAt: new Date().toISOString(), results });
}

function confirmTimeout(value: string | undefined): number {
  const n = Number(value ?? 60);
  if (!Number.isFinite(n) || n < 1 || n > 3600) throw new InputError('command line', '--confirm-timeout', `expected seconds between 1 and 3600, got ${JSON.stringify(value)}`);
  return n;
}
