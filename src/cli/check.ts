/** `lbprov check`: what each gateway has and lacks for the balancer, read in one round trip, changing nothing. */
import type { CheckResult, CheckStatus } from '../model/checks.js';
import type { HostError } from '../runner/fleet.js';
import { runFleet } from '../runner/loop.js';
import { checksFor, readOnlyPlanner } from '../runner/checks.js';
import { coloursFor, type Colours } from '../report/plan-text.js';
import { loadCommon, type CommonOptions } from './context.js';
import { EXIT_ERROR, EXIT_OK, progress } from './output.js';

export interface CheckOptions extends CommonOptions {
  json?: boolean;
}

export interface GatewayChecks {
  gateway: string;
  kernel?: string;
  checks: CheckResult[];
  error?: HostError;
}

export async function checkCommand(opts: CheckOptions): Promise<number> {
  const { gateways, ctx, forks } = loadCommon(opts);
  const spinner = await progress(`checking ${gateways.length} gateway(s)`, !!opts.json);
  const outcomes = await runFleet(gateways, ctx, forks, { lock: false, planner: readOnlyPlanner, keepPlanned: true });
  spinner.stop();
  const results: GatewayChecks[] = outcomes.map(({ gateway, result, planned }) =>
    planned && !result.error
      ? { gateway: gateway.name, kernel: planned.facts.kernel, checks: checksFor(gateway, ctx, planned.facts) }
      : { gateway: gateway.name, checks: [], ...(result.error ? { error: result.error } : {}) },
  );
  if (opts.json) process.stdout.write(JSON.stringify({ results }, null, 2) + '\n');
  else process.stdout.write(results.map((r) => formatGatewayChecks(r, coloursFor(process.stdout))).join('\n\n') + '\n');
  return results.some((r) => r.error || r.checks.some((c) => c.status === 'fail')) ? EXIT_ERROR : EXIT_OK;
}

const STATUSES: CheckStatus[] = ['ok', 'warn', 'fix', 'fail'];

export function formatGatewayChecks(r: GatewayChecks, c: Colours): string {
  const colour = (s: CheckStatus) => (s === 'ok' ? c.green : s === 'warn' ? c.yellow : s === 'fix' ? c.cyan : c.red);
  const lines = [c.bold(r.kernel ? `${r.gateway} (kernel ${r.kernel})` : r.gateway)];
  if (r.error) return [...lines, c.red(`  error: ${r.error.message}`)].join('\n');
  const width = Math.max(...r.checks.map((x) => x.id.length));
  for (const x of r.checks) {
    lines.push(`  ${colour(x.status)(x.status.padEnd(4))}  ${x.id.padEnd(width)}  ${x.message}`);
    if (x.remedy) lines.push(c.dim(`        ${' '.repeat(width)}  ${x.status === 'ok' ? 'option' : 'remedy'}: ${x.remedy}`));
  }
  lines.push(c.bold(`${r.gateway}: ${STATUSES.map((s) => `${r.checks.filter((x) => x.status === s).length} ${s}`).join(', ')}`));
  return lines.join('\n');
}
