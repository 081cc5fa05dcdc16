/**
 * plan -> steps. Each step is one shell command with its exact inverse, so a
 * failure part-way can undo precisely the steps that ran. Pure: no I/O.
 */
import type { ResourceChange } from '../model/plan.js';
import type { FileResource, Resource, RouteTableResource, ServiceResource } from '../model/resources.js';
import { invertChanges } from '../diff/diff.js';
import { shellQuote } from '../ssh/quote.js';
import { sysctlPath } from '../facts/gather.js';
import { FIREWALL_BACKENDS } from '../firewall/index.js';
import { pipeInto, sign, type ApplyStep, type ChangePair } from './shell.js';

export type { ApplyStep } from './shell.js';

/** Order: files, sysctls, routes and rules to add, the firewall (atomic per table), then removals. */
export function planSteps(changes: readonly ResourceChange[]): ApplyStep[] {
  const undo = invertChanges(changes);
  const pairs: ChangePair[] = changes.map((c, i) => ({ forward: c, backward: undo[i]! }));
  const isRemoval = (c: ResourceChange) => c.action === 'delete';
  const of = (kind: Resource['kind'], removal: boolean) => pairs.filter((p) => p.forward.kind === kind && isRemoval(p.forward) === removal);

  const steps: ApplyStep[] = [];
  // The monitor stops before anything it uses is removed.
  for (const p of of('service', true)) steps.push(serviceStep(p.forward));
  for (const p of of('file', false)) steps.push(fileStep(p.forward, p.backward));
  for (const p of of('module', false)) steps.push(moduleStep(p.forward));
  for (const p of [...of('sysctl', false), ...of('sysctl', true)]) steps.push(sysctlStep(p.forward, p.backward));
  for (const p of of('route-table', false)) steps.push(...routeSteps(p.forward));
  for (const p of of('ip-rule', false)) steps.push(...ruleSteps(p.forward));
  for (const backend of FIREWALL_BACKENDS) steps.push(...backend.applySteps(pairs.filter((p) => backend.kinds.includes(p.forward.kind))));
  for (const p of of('ip-rule', true)) steps.push(...ruleSteps(p.forward));
  // Started last: it swaps chains the steps above create.
  for (const p of of('service', false)) steps.push(serviceStep(p.forward));
  for (const p of of('route-table', true)) steps.push(...routeSteps(p.forward));
  for (const p of of('file', true)) steps.push(fileStep(p.forward, p.backward));
  for (const p of of('module', true)) steps.push(moduleStep(p.forward));
  return steps;
}

function fileStep(forward: ResourceChange, backward: ResourceChange): ApplyStep {
  return {
    description: `${sign(forward)}${forward.id}`,
    command: fileCommand(forward.after as FileResource | null, (forward.before ?? forward.after) as FileResource),
    undo: fileCommand(backward.after as FileResource | null, (backward.before ?? backward.after) as FileResource),
  };
}

/**
 * Written to a temporary name and renamed: a reader (the monitor) never sees
 * half a file. printf is a shell builtin and the apply script sets umask 022,
 * so a plain 0644 file costs one process (mv).
 */
function fileCommand(after: FileResource | null, named: FileResource): string {
  const path = shellQuote(named.path);
  if (!after) return `rm -f ${path}`;
  const tmp = shellQuote(`${named.path}.lbprov-tmp`);
  const dir = shellQuote(named.path.replace(/\/[^/]+$/, '') || '/');
  const chmod = after.mode === '0644' ? '' : ` && chmod ${after.mode} ${tmp}`;
  return `{ [ -d ${dir} ] || mkdir -p ${dir}; } && printf '%s' ${shellQuote(after.content)} > ${tmp}${chmod} && mv -f ${tmp} ${path}`;
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

/**
 * One step per route, each with its own inverse: a batch that failed on its second line would
 * leave its first applied and not undone. A route that replaces one with the same key (destination
 * and metric) is undone by putting that one back; a new route by deleting it; a removed route by
 * adding it again.
 */
function routeSteps(c: ResourceChange): ApplyStep[] {
  const before = (c.before as RouteTableResource | null)?.routes ?? [];
  const after = (c.after as RouteTableResource | null)?.routes ?? [];
  const table = ((c.after ?? c.before) as RouteTableResource).table;
  const replacedKeys = new Set(after.map(routeKey));
  const beforeByKey = new Map(before.map((r) => [routeKey(r), r]));
  const step = (command: string, undo: string) => ipStep(c, `${command} table ${table}`, `${undo} table ${table}`);
  return [
    ...after.filter((r) => !before.includes(r)).map((r) => {
      const replaced = beforeByKey.get(routeKey(r));
      return step(`route replace ${r}`, replaced ? `route replace ${replaced}` : `route del ${r}`);
    }),
    ...before.filter((r) => !replacedKeys.has(routeKey(r))).map((r) => step(`route del ${r}`, `route replace ${r}`)),
  ];
}

/** The kernel keys a route by destination and metric: `replace` of the same key needs no delete. */
function routeKey(route: string): string {
  const metric = /\bmetric (\d+)/.exec(route)?.[1] ?? '0';
  return `${route.split(' ')[0]} ${metric}`;
}

/**
 * An update adds the new rule before deleting the old one (no moment without a rule at that
 * priority), as two steps each with its own inverse, so a failed delete undoes the add.
 */
function ruleSteps(c: ResourceChange): ApplyStep[] {
  const spec = (r: Resource | null) => {
    const rule = r as Extract<Resource, { kind: 'ip-rule' }> | null;
    return rule ? `priority ${rule.priority} ${rule.selector}` : null;
  };
  const after = spec(c.after);
  const before = spec(c.before);
  const step = (command: string, undo: string) => ipStep(c, command, undo);
  return [...(after ? [step(`rule add ${after}`, `rule del ${after}`)] : []), ...(before ? [step(`rule del ${before}`, `rule add ${before}`)] : [])];
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

/** One ip command and its inverse, each read from stdin: rule and route text never meets a shell's word splitting. */
function ipStep(c: ResourceChange, command: string, undo: string): ApplyStep {
  const ip = (line: string) => pipeInto(`${line}\n`, 'ip -batch -');
  return { description: `${sign(c)}${c.id}`, command: ip(command), undo: ip(undo) };
}
