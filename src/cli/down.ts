/**
 * `lbprov down`: removes everything lbprov put on each gateway and puts its
 * kernel settings back as they were before its first up. The plan is a diff
 * like any other (desired: only the recorded settings), applied through the
 * same path as `up`.
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { HostPlan } from '../model/plan.js';
import type { Resource } from '../model/resources.js';
import { applyPlan, planGateway, type GatewayPlanned } from '../runner/gateway.js';
import { anyFailed, forEachGateway, resultOf, type HostResult } from '../runner/fleet.js';
import { removalState, SYSCTL_ORIGINAL_PATH } from '../render/persistence.js';
import { MONITOR_RUN_DIR } from '../facts/gather.js';
import { diffResources } from '../diff/diff.js';
import { shellQuote } from '../ssh/quote.js';
import { coloursFor } from '../report/plan-text.js';
import { formatFleetPlan } from '../report/fleet-plan.js';
import { formatRecap } from '../report/recap.js';
import { RemoteError } from '../errors.js';
import { loadCommon, type CommonOptions } from './context.js';
import { askToProceed, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, progress } from './output.js';

export interface DownOptions extends CommonOptions {
  /** Only print what would be removed: exit 2 when something would, 0 when nothing. */
  check?: boolean;
  yes?: boolean;
  json?: boolean;
}

/** The removal of everything lbprov owns, back to the kernel settings recorded before its first up. */
export function planRemovalFromFacts(gw: GatewaySpec, facts: HostFacts): { desired: Resource[]; plan: HostPlan } {
  const { desired, current } = removalState(facts);
  const notes = [...facts.warnings];
  if (!facts.owned.some((r) => r.kind === 'file' && r.path === SYSCTL_ORIGINAL_PATH) && facts.owned.some((r) => r.kind === 'file')) {
    notes.push(`no record of the kernel settings before lbprov (${SYSCTL_ORIGINAL_PATH}): they stay as they are`);
  }
  return { desired, plan: { gateway: gw.name, changes: diffResources(desired, current), fingerprint: facts.fingerprint, notes } };
}

/**
 * What the resource diff cannot see: the stopped monitor's runtime files (its last view of
 * link health would shape the next up) and lbprov's emptied folders. The lock, the apply
 * records (/var/lib/lbprov/txn) and the monitor's log stay.
 */
function leftoversScript(planned: GatewayPlanned): string {
  const runtime = planned.request.services.map((name) => `${shellQuote(`${MONITOR_RUN_DIR}/${name}`)}.*`);
  return [`rm -rf ${shellQuote(`${MONITOR_RUN_DIR}/state`)} ${runtime.join(' ')}`, 'rmdir /etc/lbprov/persist /etc/lbprov 2>/dev/null', 'true'].join('\n');
}

export async function downCommand(opts: DownOptions): Promise<number> {
  const { gateways, ctx, forks } = loadCommon(opts);
  const c = coloursFor(process.stdout);
  const results = new Map<string, HostResult>();
  const pending: GatewayPlanned[] = [];
  const shown: HostPlan[] = [];
  const spinner = await progress(`reading ${gateways.length} gateway(s)`, !!opts.json);
  const planned = await forEachGateway(gateways, forks, (gw) => planGateway(gw, ctx, !opts.check, planRemovalFromFacts));
  spinner.stop();
  for (const o of planned) {
    const name = o.gateway.name;
    if (!o.ok) {
      results.set(name, resultOf(o, 'failed'));
      continue;
    }
    const p = o.value;
    shown.push(p.plan);
    if (opts.check || p.plan.changes.length === 0) {
      results.set(name, { gateway: name, status: p.plan.changes.length > 0 ? 'changed' : 'ok', plan: p.plan, durationMs: o.durationMs });
      await p.session.close();
    } else {
      pending.push(p);
    }
  }
  if (!opts.json && shown.length > 0) process.stdout.write(formatFleetPlan(shown, c) + '\n\n');
  try {
    if (pending.length > 0 && !(await askToProceed(`Remove lbprov from ${pending.length} gateway(s)?`, opts.yes))) {
      for (const p of pending) results.set(p.gateway.name, { gateway: p.gateway.name, status: 'not-started', plan: p.plan, durationMs: 0 });
    } else if (pending.length > 0) {
      const removing = await progress(`removing lbprov from ${pending.length} gateway(s)`, !!opts.json);
      const applied = await forEachGateway(pending.map((p) => p.gateway), forks, async (gw) => {
        const p = pending.find((x) => x.gateway === gw)!;
        await applyPlan(p, p.plan, ctx, { confirmTimeoutS: null });
        const cleanup = await p.session.run('sh -s', { stdin: leftoversScript(p), privileged: true, mutating: true });
        if (cleanup.code !== 0) throw new RemoteError('removing the monitor\'s runtime files failed', { host: gw.name, stderr: cleanup.stderr.trim(), exitCode: cleanup.code }, 'apply');
      });
      removing.stop();
      for (const a of applied) results.set(a.gateway.name, resultOf(a, 'changed', pending.find((p) => p.gateway === a.gateway)!.plan));
    }
  } finally {
    await Promise.all(pending.map((p) => p.session.close()));
  }
  const ordered = gateways.map((g) => results.get(g.name)!);
  if (opts.json) process.stdout.write(JSON.stringify({ results: ordered }, null, 2) + '\n');
  else process.stdout.write(formatRecap(ordered, c) + '\n');
  if (anyFailed(ordered)) return EXIT_ERROR;
  return opts.check && ordered.some((r) => r.status === 'changed') ? EXIT_CHANGES : EXIT_OK;
}
