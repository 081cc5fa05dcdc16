/**
 * Route and rule changes -> apply steps. One step per route and per rule change, each one ip
 * command with its own inverse: a batch that failed on its second line would leave its first
 * applied and not undone. Pure: builds shell text only.
 */
import type { ChangeOf } from '../model/changes.js';
import { ACTION_SYMBOLS, subjectOf } from '../model/changes.js';
import type { IpFamily, RoutingRuleResource } from '../model/resources.js';
import type { ApplyStep } from '../model/steps.js';
import { pipeInto } from '../remote/quote.js';
import { ipFamilyFlag } from './family.js';

/**
 * A route that replaces one with the same key (destination and metric) is undone by putting that
 * one back; a new route by deleting it; a removed route by adding it again.
 */
export function routeSteps(c: ChangeOf<'route-table'>): ApplyStep[] {
  const before = c.before?.routes ?? [];
  const after = c.after?.routes ?? [];
  const { table, family } = subjectOf(c);
  const replacedKeys = new Set(after.map(routeKey));
  const beforeByKey = new Map(before.map((r) => [routeKey(r), r]));
  const step = (command: string, undo: string) => ipStep(c, family, `${command} table ${table}`, `${undo} table ${table}`);
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
 * A replace adds the new rule before deleting the old one (no moment without a rule at that
 * priority), as two steps each with its own inverse, so a failed delete undoes the add.
 */
export function ruleSteps(c: ChangeOf<'ip-rule'>): ApplyStep[] {
  const spec = (rule: RoutingRuleResource | null) => (rule ? `priority ${rule.priority} ${rule.selector}` : null);
  const after = spec(c.after);
  const before = spec(c.before);
  const step = (command: string, undo: string) => ipStep(c, subjectOf(c).family, command, undo);
  return [...(after ? [step(`rule add ${after}`, `rule del ${after}`)] : []), ...(before ? [step(`rule del ${before}`, `rule add ${before}`)] : [])];
}

/** One ip command and its inverse, each read from stdin: rule and route text never meets a shell's word splitting. */
function ipStep(c: ChangeOf<'ip-rule'> | ChangeOf<'route-table'>, family: IpFamily, command: string, undo: string): ApplyStep {
  const ip = (line: string) => pipeInto(`${line}\n`, `ip ${ipFamilyFlag(family)} -batch -`);
  return { description: `${ACTION_SYMBOLS[c.action]}${c.id}`, command: ip(command), undo: ip(undo) };
}
