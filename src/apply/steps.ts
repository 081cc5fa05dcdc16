/**
 * plan -> steps. Each step is one shell command with its exact inverse, so a
 * failure part-way can undo precisely the steps that ran. Each layer builds the
 * steps of its own kinds (routing/, the gateway's firewall backend); the core
 * kinds (files, sysctls, modules, services) are built here. Pure: no I/O.
 */
import type { ChangeOf, ResourceChange } from '../model/changes.js';
import { ACTION_SYMBOLS, changesOfKind, subjectOf } from '../model/changes.js';
import type { FileResource, ServiceResource } from '../model/resources.js';
import type { ApplyStep } from '../model/steps.js';
import { serviceScriptPath, sysctlPath } from '../model/paths.js';
import { shellQuote } from '../remote/quote.js';
import { routeSteps, ruleSteps } from '../routing/index.js';
import { FIREWALL_BACKENDS } from '../firewall/index.js';

export type { ApplyStep } from '../model/steps.js';

const isRemoval = (c: ResourceChange) => c.action === 'delete';

/**
 * Order: the monitor stopped if it goes, files, modules, sysctls, routes and rules to add, the
 * firewall (atomic per table; a backend that takes over is added before the one it replaces is
 * removed), rule removals, the monitor (re)started, then the other removals.
 */
export function planSteps(changes: readonly ResourceChange[]): ApplyStep[] {
  const kind = <K extends ResourceChange['kind']>(k: K, removal: boolean) => changesOfKind(changes, k).filter((c) => isRemoval(c) === removal);
  const firewall = FIREWALL_BACKENDS.map((backend) => ({ backend, changes: changes.filter((c) => backend.kinds.includes(c.kind)) }))
    .filter((f) => f.changes.length > 0)
    // Additions first: during a migration the new backend's objects are in place before the old ones go.
    .sort((a, b) => Number(a.changes.every(isRemoval)) - Number(b.changes.every(isRemoval)));
  return [
    ...kind('service', true).map(serviceStep),
    ...kind('file', false).map(fileStep),
    ...kind('module', false).map(moduleStep),
    ...[...kind('sysctl', false), ...kind('sysctl', true)].map(sysctlStep),
    ...kind('route-table', false).flatMap(routeSteps),
    ...kind('ip-rule', false).flatMap(ruleSteps),
    ...firewall.flatMap((f) => f.backend.applySteps(f.changes)),
    ...kind('ip-rule', true).flatMap(ruleSteps),
    // Started last: it swaps chains the steps above create.
    ...kind('service', false).map(serviceStep),
    ...kind('route-table', true).flatMap(routeSteps),
    ...kind('file', true).map(fileStep),
    ...kind('module', true).map(moduleStep),
  ];
}

function describe(c: ResourceChange): string {
  return `${ACTION_SYMBOLS[c.action]}${c.id}`;
}

function fileStep(c: ChangeOf<'file'>): ApplyStep {
  return { description: describe(c), command: fileCommand(c.after, subjectOf(c)), undo: fileCommand(c.before, subjectOf(c)) };
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

function sysctlStep(c: ChangeOf<'sysctl'>): ApplyStep {
  const write = (value: string | undefined, key: string) => (value !== undefined ? `printf '%s\\n' ${shellQuote(value)} > ${shellQuote(sysctlPath(key))}` : 'true');
  const { key } = subjectOf(c);
  return { description: describe(c), command: write(c.after?.value, key), undo: write(c.before?.value, key) };
}

function moduleStep(c: ChangeOf<'module'>): ApplyStep {
  // Unloading a module others may use is never safe to do automatically: removal only stops lbprov loading it.
  return c.after
    ? { description: `load ${c.after.module}`, command: `modprobe ${shellQuote(c.after.module)}`, undo: 'true' }
    : { description: `stop loading ${c.before.module}`, command: 'true', undo: 'true' };
}

function serviceStep(c: ChangeOf<'service'>): ApplyStep {
  const { name } = subjectOf(c);
  const script = shellQuote(serviceScriptPath(name));
  const control = (svc: ServiceResource | null) => (svc ? `sh ${script} restart ${shellQuote(svc.revision)}` : `if [ -f ${script} ]; then sh ${script} stop; fi`);
  // A service that was not running is stopped by its undo, newest first: before the undo removes
  // its files, and before the routes and rules it keeps are put back (it would redo them). One
  // that ran is restarted once every file is restored.
  if (!c.before) return { description: describe(c), command: control(c.after), undo: control(null) };
  return { description: describe(c), command: control(c.after), undo: 'true', recover: control(c.before) };
}
