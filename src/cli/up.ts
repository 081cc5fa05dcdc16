import type { HostPlan } from '../model/plan.js';
import { balancerPlanner, type GatewayPlanned, type RunContext } from '../runner/gateway.js';
import { runFleet, planAndApply, type FleetApply } from '../runner/loop.js';
import { anyFailed, type HostResult } from '../runner/fleet.js';
import { checkPlanSources, describeDrift, loadSavedPlan } from '../runner/saved-plan.js';
import { appendRunLog } from '../runner/run-log.js';
import { parseMaxFail, parsePauseBetween, parseSerial, runRollout, type RolloutResult } from '../runner/rollout.js';
import { coloursFor } from '../report/plan-text.js';
import { formatRecap } from '../report/recap.js';
import { FleetProgress } from '../report/progress.js';
import { buildJsonReport, formatFleetPlan, formatRolloutRecap } from '../report/fleet-plan.js';
import { InputError, LbprovError, RemoteError } from '../errors.js';
import { loadCommon, type CommonOptions, type Loaded } from './context.js';
import { askToProceed, EXIT_ERROR, EXIT_OK, progress, type Spinner } from './output.js';

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

export async function upCommand(opts: UpOptions): Promise<number> {
  const startedAt = new Date().toISOString();
  const saved = opts.plan ? loadSavedPlan(opts.plan) : null;
  // A saved plan names the inventory and playbook it was made from.
  const loaded = loadCommon(saved ? { ...opts, inventory: opts.inventory ?? saved.inventory.path, playbook: opts.playbook ?? saved.playbook.path } : opts);
  if (saved) checkPlanSources(saved, opts.plan!, loaded.sources);
  const { inventory, gateways, ctx, forks } = loaded;
  const confirmTimeoutS = opts.confirm === false ? null : confirmTimeout(opts.confirmTimeout);
  if (opts.serial !== undefined || opts.maxFail !== undefined || opts.pauseBetween !== undefined) {
    if (saved) throw new InputError('command line', '--plan', 'cannot be combined with --serial/--max-fail');
    return upInWaves(opts, loaded, confirmTimeoutS);
  }
  const c = coloursFor(process.stdout);
  const spinner = await progress(`reading ${gateways.length} gateway(s)`, !!opts.json);
  let applying: Spinner | undefined;
  const apply: FleetApply = {
    options: { confirmTimeoutS },
    onStart: async (n) => void (applying = await progress(`applying to ${n} gateway(s)`, !!opts.json)),
    onApplied: (done, total) => {
      if (applying) applying.text = `applied ${done}/${total} gateway(s)`;
    },
    onEnd: () => applying?.stop(),
  };
  const outcomes = await runFleet(gateways, ctx, forks, {
    lock: true,
    planner: balancerPlanner(ctx),
    onRead: (done, total) => (spinner.text = `read ${done}/${total} gateway(s)`),
    ...(saved ? { substitute: (planned: GatewayPlanned) => savedPlanFor(saved.hosts, planned) } : {}),
    review: async (plans, pending) => {
      spinner.stop();
      if (!opts.json && plans.length > 0) process.stdout.write(formatFleetPlan(plans, c) + '\n\n');
      return pending === 0 || askToProceed(`Apply these changes to ${pending} gateway(s)?`, opts.yes);
    },
    apply,
  });
  spinner.stop();
  const results = outcomes.map((o) => o.result);
  logRun(ctx, 'up', inventory.path, startedAt, results);
  if (opts.json) process.stdout.write(JSON.stringify({ run: ctx.id.run, results }, null, 2) + '\n');
  else process.stdout.write(formatRecap(results, c) + '\n');
  return anyFailed(results) ? EXIT_ERROR : EXIT_OK;
}

/** The saved host plan, when the gateway is still in the state it was made from. */
function savedPlanFor(hosts: readonly HostPlan[], planned: GatewayPlanned): HostPlan {
  const name = planned.gateway.name;
  const savedHost = hosts.find((h) => h.gateway === name);
  if (!savedHost) throw new RemoteError('refusing the saved plan: not in the saved plan', { host: name }, 'apply');
  if (savedHost.fingerprint !== planned.facts.fingerprint) {
    throw new RemoteError(`refusing the saved plan: state changed since the plan was made: ${describeDrift(savedHost, planned.plan).join('; ')}`, { host: name }, 'apply');
  }
  return savedHost;
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
      (gw) => planAndApply(gw, ctx, { lock: true, planner: balancerPlanner(ctx), apply: { options: { confirmTimeoutS } } }),
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
