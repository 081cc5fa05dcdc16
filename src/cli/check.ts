/** `lbprov check`: what each gateway has and lacks for the balancer, read in one round trip, changing nothing. */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { Resource } from '../model/resources.js';
import { connect, factsRequestOf, readFacts, type RunContext } from '../runner/gateway.js';
import { describeError, forEachGateway, type HostError } from '../runner/fleet.js';
import { renderDesiredState } from '../render/desired.js';
import { runChecks, type CheckResult, type CheckStatus } from '../checks/index.js';
import { coloursFor, type Colours } from '../report/plan-text.js';
import { LbprovError } from '../errors.js';
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

/** Reads the facts over one connection and closes it. */
export async function readGatewayFacts(gw: GatewaySpec, ctx: RunContext): Promise<HostFacts> {
  const session = await connect(gw, ctx);
  try {
    return await readFacts(session, gw, factsRequestOf(gw, ctx));
  } finally {
    await session.close();
  }
}

/** The checks of one gateway; a render that fails (a missing piece it needs) is one more failed check. */
export function checksFor(gw: GatewaySpec, ctx: Pick<RunContext, 'playbook' | 'templates'>, facts: HostFacts): CheckResult[] {
  let desired: Resource[] | null = null;
  let renderError: CheckResult | null = null;
  try {
    desired = renderDesiredState(gw, ctx.playbook, ctx.templates, facts);
  } catch (e) {
    if (!(e instanceof LbprovError)) throw e;
    renderError = { id: 'render', status: 'fail', message: `the balancer cannot be rendered for this gateway: ${e.message}` };
  }
  const results = runChecks(gw, facts, desired);
  return renderError ? [...results, renderError] : results;
}

export async function checkCommand(opts: CheckOptions): Promise<number> {
  const { gateways, ctx, forks } = loadCommon(opts);
  const spinner = await progress(`checking ${gateways.length} gateway(s)`, !!opts.json);
  const outcomes = await forEachGateway(gateways, forks, async (gw) => {
    const facts = await readGatewayFacts(gw, ctx);
    return { kernel: facts.kernel, checks: checksFor(gw, ctx, facts) };
  });
  spinner.stop();
  const results: GatewayChecks[] = outcomes.map((o) =>
    o.ok ? { gateway: o.gateway.name, ...o.value } : { gateway: o.gateway.name, checks: [], error: describeError(o.error) },
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
