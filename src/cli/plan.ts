import { writeFileSync } from 'node:fs';
import type { Plan } from '../model/plan.js';
import { balancerPlanner } from '../runner/gateway.js';
import { runFleet } from '../runner/loop.js';
import { coloursFor } from '../report/plan-text.js';
import { formatFleetPlan } from '../report/fleet-plan.js';
import { formatRecap } from '../report/recap.js';
import { loadCommon, type CommonOptions } from './context.js';
import { EXIT_CHANGES, EXIT_ERROR, EXIT_OK, progress } from './output.js';

export interface PlanOptions extends CommonOptions {
  json?: boolean;
  out?: string;
}

export async function planCommand(opts: PlanOptions): Promise<number> {
  const { gateways, ctx, forks, sources } = loadCommon(opts);
  const spinner = await progress(`reading ${gateways.length} gateway(s)`, !!opts.json);
  const outcomes = await runFleet(gateways, ctx, forks, {
    lock: false,
    planner: balancerPlanner(ctx),
    onRead: (done, total) => (spinner.text = `read ${done}/${total} gateway(s)`),
  });
  spinner.stop();
  const results = outcomes.map((o) => o.result);
  const plan: Plan = { version: 2, createdAt: new Date().toISOString(), ...sources, hosts: results.flatMap((r) => (r.plan ? [r.plan] : [])) };
  if (opts.out) writeFileSync(opts.out, JSON.stringify(plan, null, 2) + '\n');
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ...plan, results: results.map(({ plan: _p, ...r }) => r) }, null, 2) + '\n');
  } else {
    const c = coloursFor(process.stdout);
    process.stdout.write(formatFleetPlan(plan.hosts, c) + '\n\n');
    process.stdout.write(formatRecap(results, c) + '\n');
  }
  if (results.some((r) => r.error)) return EXIT_ERROR;
  return results.some((r) => r.status === 'changed') ? EXIT_CHANGES : EXIT_OK;
}
