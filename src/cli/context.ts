/** What every command loads before it connects anywhere: inventory, playbook, templates. */
import type { GatewaySpec, Inventory } from '../model/inventory.js';
import type { PlanSource } from '../model/plan.js';
import { loadInventory, selectGateways } from '../inventory/index.js';
import { loadPlaybook, resolvePlaybookPath } from '../render/playbook.js';
import { loadTemplateSet } from '../render/templates.js';
import { traceFromEnv } from '../ssh/trace.js';
import { SessionCache } from '../ssh/session.js';
import { factsRequestOf, type RunContext } from '../runner/gateway.js';
import { fileSource, playbookSource } from '../runner/sources.js';
import { parseForks } from '../runner/forks.js';
import { newRunIdentity } from '../apply/transaction.js';
import { InputError } from '../errors.js';

export interface CommonOptions {
  /** Absent only with `up --plan`, which names its inventory itself. */
  inventory?: string;
  playbook?: string;
  limit?: string;
  /** A number, or `auto`. */
  forks?: string;
  acceptNew?: boolean;
  lockTimeout?: string;
  hostTimeout?: string;
}

export interface Loaded {
  inventory: Inventory;
  gateways: GatewaySpec[];
  ctx: RunContext;
  forks: number;
  /** The inventory and playbook as files with their hashes (what a saved plan records). */
  sources: { inventory: PlanSource; playbook: PlanSource };
}

export function loadCommon(opts: CommonOptions, cwd = process.cwd()): Loaded {
  if (opts.inventory === undefined) throw new InputError('command line', '-i', 'an inventory is needed (-i NAME or -i PATH)');
  const inventory = loadInventory(opts.inventory, cwd);
  const gateways = selectGateways(inventory, opts.limit);
  const playbook = loadPlaybook(resolvePlaybookPath(opts.playbook, cwd));
  const templates = loadTemplateSet(playbook.templatesDir);
  const forks = parseForks(opts.forks);
  const lockWaitS = Number(opts.lockTimeout ?? 30);
  const hostTimeoutS = Number(opts.hostTimeout ?? 900);
  const ctx: RunContext = {
    playbook,
    templates,
    trace: traceFromEnv(),
    acceptNew: opts.acceptNew,
    id: newRunIdentity(),
    lockWaitS: Number.isFinite(lockWaitS) && lockWaitS >= 0 ? lockWaitS : 30,
    hostTimeoutS: Number.isFinite(hostTimeoutS) && hostTimeoutS > 0 ? hostTimeoutS : 900,
    factsRequests: new Map(),
    knownContents: new Map(),
    sessionCache: new SessionCache(),
    connectRetries: new Map(),
  };
  // Every template renders for every selected gateway before any connection (see factsRequestFor).
  for (const gw of gateways) factsRequestOf(gw, ctx);
  return {
    inventory,
    gateways,
    forks,
    ctx,
    sources: { inventory: fileSource(inventory.path), playbook: playbookSource(playbook) },
  };
}
