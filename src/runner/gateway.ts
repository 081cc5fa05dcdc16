/**
 * One gateway's connection and plan: connect once (the user's ssh config filling in what the
 * inventory leaves unset), read facts in one round trip, render and diff locally.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { GatewaySpec, SshSettings } from '../model/inventory.js';
import type { FactsRequest, HostFacts } from '../model/facts.js';
import type { HostPlan } from '../model/plan.js';
import type { Resource } from '../model/resources.js';
import { RemoteError } from '../errors.js';
import { scriptStderr } from '../remote/sections.js';
import { openSession, type SessionCache, type RemoteSession, type CommandTrace } from '../ssh/session.js';
import { resolveSshSettings } from '../ssh/ssh-config.js';
import { buildFactsScript } from '../facts/script.js';
import { parseFacts } from '../facts/parse.js';
import { firewallBackend } from '../firewall/index.js';
import { describeLinkPath, resolveLinkPaths } from '../routing/index.js';
import { factsRequestFor, renderDesiredState } from '../render/desired.js';
import type { Playbook } from '../render/playbook.js';
import type { TemplateSet } from '../render/templates.js';
import { diffResources } from '../diff/diff.js';
import { chooseMechanism } from '../render/failover-view.js';
import { describePolicy } from '../render/policy-view.js';
import { enforcePrerequisites } from '../checks/index.js';
import { EXIT_LOCKED, acquireLockScript, type RunIdentity } from '../apply/transaction.js';

export interface RunContext {
  playbook: Playbook;
  templates: TemplateSet;
  trace?: CommandTrace;
  acceptNew?: boolean;
  id: RunIdentity;
  /** Seconds a run waits for another run's lock on a gateway. */
  lockWaitS: number;
  /** Seconds one connection to a gateway may last, whatever its commands do. */
  hostTimeoutS: number;
  /** What the facts script reads per gateway, worked out once per run (see factsRequestOf). */
  factsRequests: Map<string, FactsRequest>;
  /** The requests' known file contents by hash: one copy of a text many gateways share. */
  knownContents: Map<string, string>;
  /** known_hosts and identities, read once per run; handshakes paced run-wide. */
  sessionCache: SessionCache;
  /** Per gateway: connection attempts that failed transiently and were tried again (for the recap). */
  connectRetries: Map<string, number>;
}

export interface GatewayPlanned {
  gateway: GatewaySpec;
  session: RemoteSession;
  facts: HostFacts;
  desired: Resource[];
  plan: HostPlan;
  request: FactsRequest;
  /** This run holds the gateway's lock (taken while reading facts for up/down). */
  locked: boolean;
}

/** The gateway's facts request, rendered once per run and reused by every round trip. */
export function factsRequestOf(gw: GatewaySpec, ctx: Pick<RunContext, 'playbook' | 'templates' | 'factsRequests' | 'knownContents'>): FactsRequest {
  let request = ctx.factsRequests.get(gw.name);
  if (!request) {
    request = factsRequestFor(gw, ctx.playbook, ctx.templates, ctx.knownContents);
    ctx.factsRequests.set(gw.name, request);
  }
  return request;
}

/**
 * The inventory's SSH settings, with the user's ssh config (~/.ssh/config, or
 * LBPROV_SSH_CONFIG) filling in what it leaves unset. Without such a file
 * there is nothing to ask `ssh -G`, and a fleet run saves a process per gateway.
 */
export async function connect(gw: GatewaySpec, ctx: RunContext): Promise<RemoteSession> {
  const configFile = process.env['LBPROV_SSH_CONFIG'] || undefined;
  let ssh = gw.ssh;
  if (configFile || existsSync(join(homedir(), '.ssh', 'config'))) {
    const explicit = new Set(gw.sshExplicit ?? (Object.keys(gw.ssh) as (keyof SshSettings)[]));
    ssh = await resolveSshSettings(gw.name, gw.ssh, explicit, { configFile });
  }
  const onRetry = (): void => {
    ctx.connectRetries.set(gw.name, (ctx.connectRetries.get(gw.name) ?? 0) + 1);
  };
  return openSession(gw.name, ssh, { acceptNew: ctx.acceptNew, trace: ctx.trace, lifetimeMs: ctx.hostTimeoutS * 1000, cache: ctx.sessionCache, onRetry });
}

export async function readFacts(session: RemoteSession, gw: GatewaySpec, request: FactsRequest, lock?: { ctx: RunContext }): Promise<HostFacts> {
  const prelude = lock ? acquireLockScript(lock.ctx.id, lock.ctx.lockWaitS) : '';
  const { script, marker } = buildFactsScript(request, { prelude });
  const result = await session.run('sh -s', { stdin: script, privileged: true, timeoutMs: lock ? (lock.ctx.lockWaitS + 60) * 1000 : undefined });
  if (result.code === EXIT_LOCKED) {
    const owner = /@@lbprov-locked (.*)/.exec(result.stdout)?.[1]?.trim() ?? 'unknown owner';
    throw new RemoteError(`locked by another lbprov run (${describeOwner(owner)})`, { host: gw.name }, 'locked');
  }
  if (result.code !== 0) {
    throw new RemoteError(`facts script exited ${result.code}`, { host: gw.name, command: 'sh -s (facts)', stderr: scriptStderr(result.stderr, marker), exitCode: result.code }, 'facts');
  }
  return parseFacts(gw.name, result.stdout, marker, request, { stderr: result.stderr });
}

function describeOwner(owner: string): string {
  const kv = Object.fromEntries(owner.split(/\s+/).map((p) => p.split('=')).filter((p) => p.length === 2)) as Record<string, string>;
  const since = Number(kv.since);
  const when = Number.isFinite(since) && since > 0 ? new Date(since * 1000).toISOString() : '?';
  return `controller ${kv.controller ?? '?'} pid ${kv.controller_pid ?? '?'}, since ${when}`;
}

export function planFromFacts(gw: GatewaySpec, ctx: Pick<RunContext, 'playbook' | 'templates'>, facts: HostFacts): { desired: Resource[]; plan: HostPlan } {
  const desired = renderDesiredState(gw, ctx.playbook, ctx.templates, facts);
  const changes = diffResources(desired, facts.owned);
  // A gateway that lacks what the balancer needs stops here, before anything changes.
  const notes = [
    facts.firewall.reason,
    chooseMechanism(gw, firewallBackend(facts.firewall.chosen), facts).note,
    ...learnedPathNotes(gw, facts),
    ...describePolicy(gw),
    ...gw.warnings,
    ...enforcePrerequisites(gw, facts, desired),
    ...facts.warnings,
  ];
  return { desired, plan: { gateway: gw.name, changes, fingerprint: facts.fingerprint, notes } };
}

/** Where the DHCP and point-to-point links go now (a link that is not ready is a check's warning). */
function learnedPathNotes(gw: GatewaySpec, facts: HostFacts): string[] {
  const paths = resolveLinkPaths(gw, facts);
  return gw.links.flatMap((link, i) => (link.nextHop.kind !== 'static' && paths[i]!.ready ? [describeLinkPath(link, paths[i]!)] : []));
}

/** How a command turns a gateway's facts into its plan: the balancer's by default, `down` its removal. */
export type Planner = (gw: GatewaySpec, facts: HostFacts) => { desired: Resource[]; plan: HostPlan };

/** Reads the facts over an open session (taking the gateway's lock in the same round trip) and plans. */
export async function planOver(session: RemoteSession, gw: GatewaySpec, ctx: RunContext, lock: boolean, planner: Planner): Promise<GatewayPlanned> {
  const request = factsRequestOf(gw, ctx);
  const facts = await readFacts(session, gw, request, lock ? { ctx } : undefined);
  return { gateway: gw, session, facts, request, locked: lock, ...planner(gw, facts) };
}

/** The balancer's plan, the default planner. */
export function balancerPlanner(ctx: Pick<RunContext, 'playbook' | 'templates'>): Planner {
  return (gw, facts) => planFromFacts(gw, ctx, facts);
}
