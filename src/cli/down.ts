/**
 * `lbprov down`: removes everything lbprov put on each gateway and puts its kernel settings back
 * as they were before its first up, through the same loop as `up` (runner/removal.ts).
 */
import { runFleet } from '../runner/loop.js';
import { anyFailed } from '../runner/fleet.js';
import { planRemovalFromFacts, removeLeftovers } from '../runner/removal.js';
import { coloursFor } from '../report/plan-text.js';
import { formatFleetPlan } from '../report/fleet-plan.js';
import { formatRecap } from '../report/recap.js';
import { loadCommon, type CommonOptions } from './context.js';
import { askToProceed, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, progress, type Spinner } from './output.js';

export interface DownOptions extends CommonOptions {
  /** Only print what would be removed: exit 2 when something would, 0 when nothing. */
  check?: boolean;
  yes?: boolean;
  json?: boolean;
}

export async function downCommand(opts: DownOptions): Promise<number> {
  const { gateways, ctx, forks } = loadCommon(opts);
  const c = coloursFor(process.stdout);
  const spinner = await progress(`reading ${gateways.length} gateway(s)`, !!opts.json);
  let removing: Spinner | undefined;
  const outcomes = await runFleet(gateways, ctx, forks, {
    lock: !opts.check,
    planner: planRemovalFromFacts,
    onRead: (done, total) => (spinner.text = `read ${done}/${total} gateway(s)`),
    review: async (plans, pending) => {
      spinner.stop();
      if (!opts.json && plans.length > 0) process.stdout.write(formatFleetPlan(plans, c) + '\n\n');
      return pending === 0 || askToProceed(`Remove lbprov from ${pending} gateway(s)?`, opts.yes);
    },
    ...(opts.check
      ? {}
      : {
          apply: {
            options: { confirmTimeoutS: null },
            after: removeLeftovers,
            onStart: async (n: number) => void (removing = await progress(`removing lbprov from ${n} gateway(s)`, !!opts.json)),
            onEnd: () => removing?.stop(),
          },
        }),
  });
  spinner.stop();
  const results = outcomes.map((o) => o.result);
  if (opts.json) process.stdout.write(JSON.stringify({ results }, null, 2) + '\n');
  else process.stdout.write(formatRecap(results, c) + '\n');
  if (anyFailed(results)) return EXIT_ERROR;
  return opts.check && results.some((r) => r.status === 'changed') ? EXIT_CHANGES : EXIT_OK;
}
