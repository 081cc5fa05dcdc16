/**
 * plan -> steps. Each step is one shell command with its exact inverse, so a
 * failure part-way can undo precisely the steps that ran. Pure: no I/O.
 */
import type { ResourceChange } from '../model/plan.js';
import type { ChainResource, FileResource, JumpResource, Resource, RouteTableResource, ServiceResource } from '../model/resources.js';
import { invertChanges } from '../diff/diff.js';
import { shellQuote } from '../ssh/quote.js';
import { sysctlPath } from '../facts/gather.js';

export interface ApplyStep {
  /** What a person reads in progress output and error reports. */
  description: string;
  command: string;
  undo: string;
  /**
   * Run at the end of a rollback when this step was started, after every undo:
   * a service restarted part-way is started again from the restored files.
   */
  recover?: string;
}

const IPTABLES_RESTORE = 'iptables-restore -w 10 --noflush';

/** Order: files, sysctls, routes and rules to add, one atomic payload per iptables table, then removals. */
export function planSteps(changes: readonly ResourceChange[]): ApplyStep[] {
  const undo = invertChanges(changes);
  const pairs = changes.map((c, i) => ({ forward: c, backward: undo[i]! }));
  const isRemoval = (c: ResourceChange) => c.action === 'delete';
  const of = (kind: Resource['kind'], removal: boolean) => pairs.filter((p) => p.forward.kind === kind && isRemoval(p.forward) === removal);

  const steps: ApplyStep[] = [];
  // The monitor stops before anything it uses is removed.
  for (const p of of('service', true)) steps.push(serviceStep(p.forward));
  for (const p of of('file', false)) steps.push(fileStep(p.forward, p.backward));
  for (const p of of('module', false)) steps.push(moduleStep(p.forward));
  for (const p of [...of('sysctl', false), ...of('sysctl', true)]) steps.push(sysctlStep(p.forward, p.backward));
  for (const p of of('route-table', false)) steps.push(routeStep(p.forward, p.backward));
  for (const p of of('ip-rule', false)) steps.push(ruleStep(p.forward, p.backward));
  for (const table of ['mangle', 'nat'] as const) {
    const inTable = pairs.filter((p) => (p.forward.kind === 'chain' || p.forward.kind === 'jump') && tableOf(p.forward) === table);
    if (inTable.length === 0) continue;
    steps.push({
      description: `iptables ${table}: ${inTable.map((p) => `${sign(p.forward)}${p.forward.id.split(':').slice(2).join(':')}`).join(' ')}`,
      command: pipeInto(firewallPayload(table, inTable.map((p) => p.forward)), IPTABLES_RESTORE),
      undo: pipeInto(firewallPayload(table, inTable.map((p) => p.backward)), IPTABLES_RESTORE),
    });
  }
  for (const p of of('ip-rule', true)) steps.push(ruleStep(p.forward, p.backward));
  // Started last: it swaps chains the steps above create.
  for (const p of of('service', false)) steps.push(serviceStep(p.forward));
  for (const p of of('route-table', true)) steps.push(routeStep(p.forward, p.backward));
  for (const p of of('file', true)) steps.push(fileStep(p.forward, p.backward));
  for (const p of of('module', true)) steps.push(moduleStep(p.forward));
  return steps;
}

function sign(c: ResourceChange): string {
  return c.action === 'create' ? '+' : c.action === 'delete' ? '-' : '~';
}

function tableOf(c: ResourceChange): string {
  return ((c.after ?? c.before) as ChainResource | JumpResource).table;
}

/** Payloads travel base64-encoded: no quoting of rule text can go wrong. */
function pipeInto(payload: string, command: string): string {
  return `printf '%s' ${shellQuote(Buffer.from(payload).toString('base64'))} | base64 -d | ${command}`;
}

/**
 * One iptables-restore --noflush payload: `:CHAIN` re-declares (and so flushes)
 * exactly the chains that change; built-in chains are never declared, so
 * foreign rules in them are untouched.
 */
export function firewallPayload(table: string, changes: readonly ResourceChange[]): string {
  const lines = [`*${table}`];
  const chains = changes.filter((c) => c.kind === 'chain');
  const jumps = changes.filter((c) => c.kind === 'jump');
  for (const c of chains) if (c.after) lines.push(`:${(c.after as ChainResource).chain} - [0:0]`);
  for (const c of chains) {
    const chain = c.after as ChainResource | null;
    if (chain) for (const rule of chain.rules) lines.push(`-A ${chain.chain} ${rule}`);
  }
  for (const c of jumps) {
    if (c.before) lines.push(`-D ${(c.before as JumpResource).chain} ${(c.before as JumpResource).rule}`);
    if (c.after) lines.push(`-I ${(c.after as JumpResource).chain} 1 ${(c.after as JumpResource).rule}`);
  }
  // Every removed chain is emptied before any is deleted: one may still jump to another.
  const removed = chains.filter((c) => !c.after).map((c) => (c.before as ChainResource).chain);
  for (const name of removed) lines.push(`-F ${name}`);
  for (const name of removed) lines.push(`-X ${name}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

function fileStep(forward: ResourceChange, backward: ResourceChange): ApplyStep {
  return {
    description: `${sign(forward)}${forward.id}`,
    command: fileCommand(forward.after as FileResource | null, (forward.before ?? forward.after) as FileResource),
    undo: fileCommand(backward.after as FileResource | null, (backward.before ?? backward.after) as FileResource),
  };
}

function fileCommand(after: FileResource | null, named: FileResource): string {
  const path = shellQuote(named.path);
  if (!after) return `rm -f ${path}`;
  const tmp = shellQuote(`${named.path}.lbprov-tmp`);
  const dir = shellQuote(named.path.replace(/\/[^/]+$/, '') || '/');
  return `mkdir -p ${dir} && printf '%s' ${shellQuote(Buffer.from(after.content).toString('base64'))} | base64 -d > ${tmp} && chmod ${after.mode} ${tmp} && mv -f ${tmp} ${path}`;
}

function sysctlStep(forward: ResourceChange, backward: ResourceChange): ApplyStep {
  const write = (c: ResourceChange) => {
    const r = (c.after ?? c.before) as Extract<Resource, { kind: 'sysctl' }>;
    return c.after ? `printf '%s\\n' ${shellQuote(r.value)} > ${shellQuote(sysctlPath(r.key))}` : 'true';
  };
  return { description: `${sign(forward)}${forward.id}`, command: write(forward), undo: write(backward) };
}

function moduleStep(forward: ResourceChange): ApplyStep {
  const r = (forward.after ?? forward.before) as Extract<Resource, { kind: 'module' }>;
  // Unloading a module others may use is never safe to do automatically: removal only stops lbprov loading it.
  return forward.after
    ? { description: `load ${r.module}`, command: `modprobe ${shellQuote(r.module)}`, undo: 'true' }
    : { description: `stop loading ${r.module}`, command: 'true', undo: 'true' };
}

function routeStep(forward: ResourceChange, backward: ResourceChange): ApplyStep {
  return { description: `${sign(forward)}${forward.id}`, command: ipBatch(routeCommands(forward)), undo: ipBatch(routeCommands(backward)) };
}

function routeCommands(c: ResourceChange): string[] {
  const before = (c.before as RouteTableResource | null)?.routes ?? [];
  const after = (c.after as RouteTableResource | null)?.routes ?? [];
  const table = ((c.after ?? c.before) as RouteTableResource).table;
  const replacedKeys = new Set(after.map(routeKey));
  return [
    ...after.filter((r) => !before.includes(r)).map((r) => `route replace ${r} table ${table}`),
    ...before.filter((r) => !replacedKeys.has(routeKey(r))).map((r) => `route del ${r} table ${table}`),
  ];
}

/** The kernel keys a route by destination and metric: `replace` of the same key needs no delete. */
function routeKey(route: string): string {
  const metric = /\bmetric (\d+)/.exec(route)?.[1] ?? '0';
  return `${route.split(' ')[0]} ${metric}`;
}

function ruleStep(forward: ResourceChange, backward: ResourceChange): ApplyStep {
  return { description: `${sign(forward)}${forward.id}`, command: ipBatch(ruleCommands(forward)), undo: ipBatch(ruleCommands(backward)) };
}

/** An update adds the new rule before deleting the old one: no moment without a rule at that priority. */
function ruleCommands(c: ResourceChange): string[] {
  const rule = (r: Resource | null) => r as Extract<Resource, { kind: 'ip-rule' }> | null;
  const out: string[] = [];
  const after = rule(c.after);
  const before = rule(c.before);
  if (after) out.push(`rule add priority ${after.priority} ${after.selector}`);
  if (before) out.push(`rule del priority ${before.priority} ${before.selector}`);
  return out;
}

export function serviceScriptPath(name: string): string {
  return `/etc/lbprov/${name}.sh`;
}

function serviceStep(forward: ResourceChange): ApplyStep {
  const control = (r: Resource | null, fallback: Resource) => {
    const svc = (r ?? fallback) as ServiceResource;
    const script = shellQuote(serviceScriptPath(svc.name));
    return r ? `sh ${script} restart ${shellQuote(svc.revision)}` : `if [ -f ${script} ]; then sh ${script} stop; fi`;
  };
  const named = (forward.after ?? forward.before)!;
  return {
    description: `${sign(forward)}${forward.id}`,
    command: control(forward.after, named),
    undo: 'true',
    recover: control(forward.before, named),
  };
}

function ipBatch(commands: string[]): string {
  return commands.length === 0 ? 'true' : pipeInto(commands.join('\n') + '\n', 'ip -batch -');
}
