import { createInterface } from 'node:readline/promises';
import { applyPlan, planGateway, type GatewayPlanned } from '../runner/gateway.js';
import { describeError, forEachGateway, statusOfError, type HostResult } from '../runner/fleet.js';
import { coloursFor, formatHostPlan } from '../report/plan-text.js';
import { formatRecap } from '../report/recap.js';
import { LbprovError } from '../errors.js';
import { loadCommon, type CommonOptions } from './context.js';
import { EXIT_ERROR, EXIT_OK, progress } from './output.js';

export interface UpOptions extends CommonOptions {
  yes?: boolean;
  json?: boolean;
}

export async function upCommand(opts: UpOptions): Promise<number> {
  const { gateways, ctx, forks } = loadCommon(opts);
  const c = coloursFor(process.stdout);
  const spinner = progress(`reading ${gateways.length} gateway(s)`, !!opts.json).start();
  const planned = await forEachGateway(gateways, forks, (gw) => planGateway(gw, ctx));
  spinner.stop();
  const results = new Map<string, HostResult>();
  const pending: GatewayPlanned[] = [];
  for (const o of planned) {
    if (!o.ok) {
      results.set(o.gateway.name, { gateway: o.gateway.name, status: statusOfError(o.error), error: describeError(o.error), durationMs: o.durationMs });
      continue;
    }
    if (!opts.json) process.stdout.write(formatHostPlan(o.value.plan, c) + '\n\n');
    if (o.value.plan.changes.length === 0) {
      results.set(o.gateway.name, { gateway: o.gateway.name, status: 'ok', plan: o.value.plan, durationMs: o.durationMs });
      await o.value.session.close();
    } else {
      pending.push(o.value);
    }
  }
  try {
    if (pending.length > 0 && !(await confirmed(opts, pending.length))) {
      for (const p of pending) results.set(p.gateway.name, { gateway: p.gateway.name, status: 'not-started', plan: p.plan, durationMs: 0 });
    } else if (pending.length > 0) {
      const applying = progress(`applying to ${pending.length} gateway(s)`, !!opts.json).start();
      const applied = await forEachGateway(pending.map((p) => p.gateway), forks, async (gw) => {
        const p = pending.find((x) => x.gateway === gw)!;
        const result = await applyPlan(p, p.plan, ctx);
        if (result.remaining > 0) {
          throw new LbprovError(`${gw.name}: applied, but ${result.remaining} change(s) still differ afterwards (a template the kernel rewrites differently?)`);
        }
        return result;
      });
      applying.stop();
      for (const a of applied) {
        const plan = pending.find((p) => p.gateway === a.gateway)!.plan;
        results.set(
          a.gateway.name,
          a.ok
            ? { gateway: a.gateway.name, status: 'changed', plan, durationMs: a.durationMs }
            : { gateway: a.gateway.name, status: statusOfError(a.error), plan, error: describeError(a.error), durationMs: a.durationMs },
        );
      }
    }
  } finally {
    await Promise.all(pending.map((p) => p.session.close()));
  }
  const ordered = gateways.map((g) => results.get(g.name)!);
  if (opts.json) process.stdout.write(JSON.stringify({ results: ordered }, null, 2) + '\n');
  else process.stdout.write(formatRecap(ordered, c) + '\n');
  return ordered.some((r) => r.status === 'failed' || r.status === 'unreachable' || r.status === 'not-started') ? EXIT_ERROR : EXIT_OK;
}

async function confirmed(opts: UpOptions, count: number): Promise<boolean> {
  if (opts.yes) return true;
  if (!process.stdin.isTTY) {
    throw new LbprovError('refusing to apply without confirmation: not on a terminal (pass --yes)');
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`Apply these changes to ${count} gateway(s)? [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
