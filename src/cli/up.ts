import type { HostPlan } from '../model/plan.js';
import { applyPlan, planGateway, type GatewayPlanned, type RunContext } from '../runner/gateway.js';
import { anyFailed, describeError, forEachGateway, resultOf, type HostResult } from '../runner/fleet.js';
import { describeDrift, loadSavedPlan } from '../runner/saved-plan.js';
import { appendRunLog } from '../runner/run-log.js';
import { coloursFor } from '../report/plan-text.js';
import { formatRecap } from '../report/recap.js';
import { InputError, LbprovError, RemoteError } from '../errors.js';
import { loadCommon, type CommonOptions, type Loaded } from './context.js';
import { parseMaxFail, parsePauseBetween, parseSerial, runRollout, type RolloutResult } from '../runner/rollout.js';
import { FleetProgress } from '../report/progress.js';
import { buildJsonReport, formatFleetPlan, formatRolloutRecap } from '../report/fleet-plan.js';
import { askToProceed, EXIT_ERROR, EXIT_OK, progress } from './output.js';

export interface UpOptions extends CommonOptions {
  yes?: boolean;
  json?: boolean;
  /** false with --no-confirm. */
  confirm?: boolean;
  confirmTimeout?: string;
  plan?: string;
  serial?: string;
  maxFail?: string;
  pauseBetween?: string;
}

interface Pending {
  planned: GatewayPlanned;
  plan: HostPlan;
}

export async function upCommand(opts: UpOptions): Promise<number> {
  const startedAt = new Date().toISOString();
  const loaded = loadCommon(opts);
  const { inventory, gateways, ctx, forks } = loaded;
  const confirmTimeoutS = opts.confirm === false ? null : confirmTimeout(opts.confirmTimeout);
  if (opts.serial !== undefined || opts.maxFail !== undefined || opts.pauseBetween !== undefined) return upInWaves(opts, loaded, confirmTimeoutS);
  const saved = opts.plan ? loadSavedPlan(opts.plan) : null;
  const c = coloursFor(process.stdout);
  const results = new Map<string, HostResult>();
  const pending: Pending[] = [];
  const shown: HostPlan[] = [];

  const spinner = await progress(`reading ${gateways.length} gateway(s)`, !!opts.json);
  const planned = await forEachGateway(gateways, forks, (gw) => planGateway(gw, ctx, true));
  spinner.stop();
  for (const o of planned) {
    const name = o.gateway.name;
    if (!o.ok) {
      results.set(name, resultOf(o, 'failed'));
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
    shown.push(plan);
    if (plan.changes.length === 0) {
      // Closing the connection releases the lock taken with the facts.
      results.set(name, { gateway: name, status: 'ok', plan, durationMs: o.durationMs });
      await p.session.close();
    } else {
      pending.push({ planned: p, plan });
    }
  }

  if (!opts.json && shown.length > 0) process.stdout.write(formatFleetPlan(shown, c) + '\n\n');
  try {
    if (pending.length > 0 && !(await askToProceed(`Apply these changes to ${pending.length} gateway(s)?`, opts.yes))) {
      for (const p of pending) {
        results.set(p.plan.gateway, { gateway: p.plan.gateway, status: 'not-started', plan: p.plan, durationMs: 0 });
      }
    } else if (pending.length > 0) {
      const applying = await progress(`applying to ${pending.length} gateway(s)`, !!opts.json);
      const applied = await forEachGateway(pending.map((p) => p.planned.gateway), forks, async (gw) => {
        const p = pending.find((x) => x.planned.gateway === gw)!;
        return applyPlan(p.planned, p.plan, ctx, { confirmTimeoutS });
      });
      applying.stop();
      for (const a of applied) results.set(a.gateway.name, resultOf(a, 'changed', pending.find((p) => p.planned.gateway === a.gateway)!.plan));
    }
  } finally {
    await Promise.all(pending.map((p) => p.planned.session.close()));
  }

  const ordered = gateways.map((g) => results.get(g.name)!);
  logRun(ctx, 'up', inventory.path, startedAt, ordered);
  if (opts.json) process.stdout.write(JSON.stringify({ run: ctx.id.run, results: ordered }, null, 2) + '\n');
  else process.stdout.write(formatRecap(ordered, c) + '\n');
  return anyFailed(ordered) ? EXIT_ERROR : EXIT_OK;
}

export function logRun(ctx: RunContext, command: string, inventory: string, startedAt: string, results: HostResult[]): void {
  appendRunLog({ run: ctx.id.run, command, inventory, startedAt, finishedAt: new Date().toISOString(), results });
}

function confirmTimeout(value: string | undefined): number {
  const n = Number(value ?? 60);
  if (!Number.isFinite(n) || n < 1 || n > 3600) throw new InputError('command line', '--confirm-timeout', `expected seconds between 1 and 3600, got ${JSON.stringify(value)}`);
  return n;
}

/** `up --serial/--max-fail`: each wave plans and applies its gateways, as Ansible's serial runs the whole play per batch. */
async function upInWaves(opts: UpOptions, { inventory, gateways, ctx, forks }: Loaded, confirmTimeoutS: number | null): Promise<number> {
  const startedAt = new Date().toISOString();
  const serial = opts.serial !== undefined ? parseSerial(opts.serial) : undefined;
  const maxFail = opts.maxFail !== undefined ? parseMaxFail(opts.maxFail) : undefined;
  const pauseBetweenMs = opts.pauseBetween !== undefined ? parsePauseBetween(opts.pauseBetween) : 0;
  if (opts.plan) throw new InputError('command line', '--plan', 'cannot be combined with --serial/--max-fail');
  // A wave applies as soon as it is planned: there is no moment to ask, so review `plan` first.
  if (!opts.yes) throw new LbprovError('a rollout in waves applies without asking: review `lbprov plan` first, then pass --yes');
  const progress = await new FleetProgress({ json: !!opts.json, colours: coloursFor(process.stderr) }).start(gateways.length);
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let rollout: RolloutResult;
  try {
    rollout = await runRollout(
      gateways,
      { serial, maxFail, pauseBetweenMs, forks, signal: abort.signal },
      async (gw): Promise<HostResult> => {
        const t0 = performance.now();
        const planned = await planGateway(gw, ctx, true);
        try {
          if (planned.plan.changes.length === 0) return { gateway: gw.name, status: 'ok', plan: planned.plan, durationMs: performance.now() - t0 };
          await applyPlan(planned, planned.plan, ctx, { confirmTimeoutS });
          return { gateway: gw.name, status: 'changed', plan: planned.plan, durationMs: performance.now() - t0 };
        } finally {
          await planned.session.close();
        }
      },
      (event) => progress.handle(event),
    );
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
  }
  logRun(ctx, 'up', inventory.path, startedAt, rollout.hosts);
  if (opts.json) process.stdout.write(JSON.stringify({ run: ctx.id.run, ...buildJsonReport(rollout.hosts, rollout) }, null, 2) + '\n');
  else process.stdout.write(formatRolloutRecap(rollout, coloursFor(process.stdout)) + '\n');
  return rollout.hosts.every((r) => r.status === 'ok' || r.status === 'changed') ? EXIT_OK : EXIT_ERROR;
}
