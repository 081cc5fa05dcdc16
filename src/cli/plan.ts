import { writeFileSync } from 'node:fs';
import type { Plan } from '../model/plan.js';
import { planGateway } from '../runner/gateway.js';
import { forEachGateway, resultOf, type HostResult } from '../runner/fleet.js';
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
  const { inventory, gateways, ctx, forks } = loadCommon(opts);
  const spinner = await progress(`reading ${gateways.length} gateway(s)`, !!opts.json);
  let done = 0;
  const outcomes = await forEachGateway(gateways, forks, async (gw) => {
    const planned = await planGateway(gw, ctx);
    await planned.session.close();
    spinner.text = `read ${++done}/${gateways.length} gateway(s)`;
    return planned.plan;
  });
  spinner.stop();
  const results: HostResult[] = outcomes.map((o) => (o.ok ? resultOf(o, o.value.changes.length > 0 ? 'changed' : 'ok', o.value) : resultOf(o, 'failed')));
  const plan: Plan = {
    version: 1,
    inventory: inventory.path,
    createdAt: new Date().toISOString(),
    hosts: results.flatMap((r) => (r.plan ? [r.plan] : [])),
  };
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
