/** `lbprov status`: what each gateway's link monitor sees, one round trip per gateway. */
import type { GatewaySpec } from '../model/inventory.js';
import { RemoteError } from '../errors.js';
import { describeError, forEachGateway, type HostError } from '../runner/fleet.js';
import { connect, type RunContext } from '../runner/gateway.js';
import { coloursFor } from '../report/plan-text.js';
import { buildStatusScript, parseStatusOutput, type GatewayStatus } from '../status/monitor-status.js';
import { formatGatewayStatus } from '../status/format.js';
import { loadCommon, type CommonOptions } from './context.js';
import { EXIT_ERROR, EXIT_OK, progress } from './output.js';

export interface StatusOptions extends CommonOptions {
  json?: boolean;
}

export async function readGatewayStatus(gw: GatewaySpec, ctx: RunContext): Promise<GatewayStatus> {
  // Connected like plan and up: the user's ssh config, the host timeout, the run's shared files.
  const session = await connect(gw, ctx);
  try {
    const { script, marker } = buildStatusScript(gw);
    const result = await session.run('sh -s', { stdin: script, privileged: true });
    try {
      return parseStatusOutput(gw, result.stdout, marker);
    } catch (e) {
      throw new RemoteError(`cannot read the monitor status: ${(e as Error).message}`, { host: gw.name, command: 'sh -s (status)', stderr: result.stderr.trim(), exitCode: result.code }, 'facts');
    }
  } finally {
    await session.close();
  }
}

/** Exit 0 when every monitor lbprov deployed is running; 1 when one is not or a gateway cannot be read. */
export async function statusCommand(opts: StatusOptions): Promise<number> {
  const { gateways, ctx, forks } = loadCommon(opts);
  const spinner = await progress(`reading ${gateways.length} gateway(s)`, !!opts.json);
  const outcomes = await forEachGateway(gateways, forks, (gw) => readGatewayStatus(gw, ctx));
  spinner.stop();
  const results: ({ gateway: string; status: GatewayStatus } | { gateway: string; error: HostError })[] = outcomes.map((o) =>
    o.ok ? { gateway: o.gateway.name, status: o.value } : { gateway: o.gateway.name, error: describeError(o.error) },
  );
  if (opts.json) {
    process.stdout.write(JSON.stringify({ gateways: results.map((r) => ('status' in r ? { ok: r.status.errors.length === 0, ...r.status } : { ok: false, ...r })) }, null, 2) + '\n');
  } else {
    const c = coloursFor(process.stdout);
    for (const r of results) {
      process.stdout.write(('status' in r ? formatGatewayStatus(r.status, c) : `${c.bold(r.gateway)}: ${c.red(`${r.error.reason}: ${r.error.message}`)}`) + '\n');
    }
  }
  return results.some((r) => !('status' in r) || r.status.errors.length > 0) ? EXIT_ERROR : EXIT_OK;
}
