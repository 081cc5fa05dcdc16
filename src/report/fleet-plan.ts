/**
 * Fleet-sized reports: the plan grouped by identical diff, the rollout recap, and the --json
 * report CI reads.
 *
 * Grouping normalises IPv4 addresses: a fleet's gateways differ in their link addresses and
 * often their next hops, so their diffs would never be byte-identical. Each address is replaced
 * by a placeholder numbered in order of first appearance, so gateways group when their diffs
 * have the same shape and use their own addresses in the same places; a real difference (another
 * rule, weight, mark, interface, prefix length) still splits the group. Service revisions (hashes
 * of files that hold the addresses) and the gateway's own name (templates write it into comments)
 * are normalised too. One member's concrete
 * diff is shown, and the header says when the members' addresses differ.
 */
import type { HostPlan } from '../model/plan.js';
import { summarize } from '../model/plan.js';
import type { HostResult, HostStatus } from '../runner/fleet.js';
import type { RolloutResult, WaveReport } from '../runner/rollout.js';
import { formatChange, summaryLine, type Colours } from './plan-text.js';
import { formatRecap } from './recap.js';

export interface PlanGroup {
  /** Members in the order given. */
  gateways: string[];
  /** The first member's plan: the concrete diff shown for the group. */
  representative: HostPlan;
  /** Whether members' diffs differ (in addresses, names, revisions: what normalisation hides). */
  addressesDiffer: boolean;
}

const IPV4 = /\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b/g;

/** The diff text of a plan, uncoloured: what a reader compares. */
export function planText(plan: HostPlan, colours: Colours): string {
  const lines = plan.notes.map((n) => `  # ${n}`);
  for (const change of plan.changes) lines.push(...formatChange(change, colours));
  return lines.join('\n');
}

/**
 * `text` with each distinct IPv4 address replaced by <ip1>, <ip2>, ... in order of first
 * appearance, the gateway's name by <gateway> and each of `revisions` by <revision>.
 */
export function normalisePerGateway(text: string, gateway?: string, revisions: readonly string[] = []): string {
  const seen = new Map<string, number>();
  let named = text;
  for (const word of revisions) named = named.replace(new RegExp(`\\b${escapeRegExp(word)}\\b`, 'g'), '<revision>');
  if (gateway !== undefined) named = named.replace(new RegExp(`(?<![\\w.-])${escapeRegExp(gateway)}(?![\\w-])`, 'g'), '<gateway>');
  return named.replace(IPV4, (address) => {
    let n = seen.get(address);
    if (n === undefined) seen.set(address, (n = seen.size + 1));
    return `<ip${n}>`;
  });
}

function serviceRevisions(plan: HostPlan): string[] {
  return plan.changes.flatMap((c) => [c.before, c.after]).flatMap((r) => (r?.kind === 'service' && r.revision !== '' ? [r.revision] : []));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Groups plans with the same diff (see the file comment); the biggest groups come first, ties in input order. */
export function groupPlans(plans: readonly HostPlan[], colours: Colours): PlanGroup[] {
  const groups = new Map<string, PlanGroup & { exact: string }>();
  for (const plan of plans) {
    const exact = planText(plan, colours);
    const key = normalisePerGateway(exact, plan.gateway, serviceRevisions(plan));
    const group = groups.get(key);
    if (group) {
      group.gateways.push(plan.gateway);
      if (exact !== group.exact) group.addressesDiffer = true;
    } else {
      groups.set(key, { gateways: [plan.gateway], representative: plan, addressesDiffer: false, exact });
    }
  }
  return [...groups.values()]
    .map(({ exact: _exact, ...group }) => group)
    .sort((a, b) => b.gateways.length - a.gateways.length);
}

/**
 * Names, with runs of consecutive numbers sharing a prefix written as ranges:
 * gw1, gw2, gw3, gw7, paris-2 -> "gw1..gw3, gw7, paris-2".
 */
export function compactNames(names: readonly string[]): string {
  const out: string[] = [];
  let run: string[] = [];
  let runPrefix = '';
  let runLast = NaN;
  const flush = () => {
    out.push(...(run.length >= 3 ? [`${run[0]}..${run.at(-1)}`] : run));
    run = [];
  };
  for (const name of names) {
    const m = /^(.*?)(\d+)$/.exec(name);
    const n = m ? Number(m[2]) : NaN;
    if (m && run.length > 0 && m[1] === runPrefix && n === runLast + 1) {
      run.push(name);
    } else {
      flush();
      if (!m) {
        out.push(name);
        continue;
      }
      run = [name];
      runPrefix = m[1] ?? '';
    }
    runLast = n;
  }
  flush();
  return out.join(', ');
}

/** The fleet plan for people: each distinct diff once, headed by how many gateways and which. */
export function formatFleetPlan(plans: readonly HostPlan[], c: Colours): string {
  const blocks: string[] = [];
  for (const group of groupPlans(plans, c)) {
    const n = group.gateways.length;
    const plan = group.representative;
    const lines = [c.bold(`${n} gateway${n === 1 ? '' : 's'}: ${compactNames(group.gateways)}`)];
    if (n > 1 && group.addressesDiffer && plan.changes.length > 0) lines.push(c.dim(`  (addresses and names differ per gateway; shown for ${plan.gateway})`));
    const text = planText(plan, c);
    if (text !== '') lines.push(text);
    if (plan.changes.length === 0) {
      lines.push('  no changes');
    } else {
      const s = summarize(plan);
      lines.push(c.bold(n > 1 ? `  ${n} gateways: ${s.add} to add, ${s.change} to change, ${s.remove} to remove each` : summaryLine(plan)));
    }
    blocks.push(lines.join('\n'));
  }
  const changed = plans.filter((p) => p.changes.length > 0).length;
  blocks.push(c.bold(`${plans.length} gateway(s) planned: ${changed} with changes, ${plans.length - changed} without`));
  return blocks.join('\n\n');
}

export interface FleetSummary {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  notStarted: number;
}

export function summarizeResults(results: readonly Pick<HostResult, 'status'>[]): FleetSummary {
  const count = (s: HostStatus) => results.filter((r) => r.status === s).length;
  return { ok: count('ok'), changed: count('changed'), failed: count('failed'), unreachable: count('unreachable'), notStarted: count('not-started') };
}

export interface JsonHostReport {
  gateway: string;
  status: HostStatus;
  /** Wave the gateway belonged to (from 1); null outside a rollout. */
  wave: number | null;
  durationMs: number;
  changes: { add: number; change: number; remove: number } | null;
  /** Resource ids of the changes, when there is a plan. */
  resources: string[];
  error: { message: string; reason: string; stderr?: string } | null;
}

export interface JsonFleetReport {
  summary: FleetSummary;
  waves: WaveReport[];
  stopped: RolloutResult['stopped'];
  hosts: JsonHostReport[];
}

/** The --json report for CI: counts first, then waves and one entry per gateway. */
export function buildJsonReport(results: readonly (HostResult & { wave?: number })[], rollout?: Pick<RolloutResult, 'waves' | 'stopped'>): JsonFleetReport {
  return {
    summary: summarizeResults(results),
    waves: rollout?.waves ?? [],
    stopped: rollout?.stopped ?? null,
    hosts: results.map((r) => ({
      gateway: r.gateway,
      status: r.status,
      wave: r.wave ?? null,
      durationMs: Math.round(r.durationMs),
      changes: r.plan ? summarize(r.plan) : null,
      resources: r.plan ? r.plan.changes.map((ch) => `${ch.action} ${ch.id}`) : [],
      error: r.error ?? null,
    })),
  };
}

/** The recap after a rollout: the per-gateway recap, then one line per wave and why it stopped. */
export function formatRolloutRecap(rollout: RolloutResult, c: Colours): string {
  const lines = [formatRecap(rollout.hosts, c)];
  for (const w of rollout.waves) {
    const line = `wave ${w.index}/${rollout.plannedWaves}: ${w.gateways.length} gateway(s), ${w.failed} failed${w.exceeded ? ' (over --max-fail)' : ''}`;
    lines.push(w.failed > 0 ? c.red(line) : line);
  }
  if (rollout.stopped) {
    const notStarted = rollout.hosts.filter((h) => h.status === 'not-started').length;
    lines.push(c.red(`${rollout.stopped.message}; ${notStarted} gateway(s) not started`));
  }
  return lines.join('\n');
}
