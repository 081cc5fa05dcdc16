/**
 * Saved plans: reviewed before a change window, applied as-is inside it, refused when stale. A plan
 * file is untrusted input: it is read with the same strict schemas as a gateway's facts (every
 * resource kind, every field), each change must be coherent (both sides of its own kind and id),
 * and the commands are always rebuilt from its changes, never taken from it.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import type { HostPlan, Plan, PlanSource } from '../model/plan.js';
import type { ResourceChange } from '../model/changes.js';
import { checkedChange, IncoherentChangeError } from '../model/changes.js';
import { isResourceKind } from '../model/resources.js';
import { InputError } from '../errors.js';
import { checkResource, ResourceCheckError } from '../facts/resource-schemas.js';

/** Far above a real plan of a thousand gateways; a bigger file is refused before it is read. */
const MAX_PLAN_BYTES = 256 * 1024 * 1024;

const source = z.strictObject({ path: z.string().min(1).max(4096), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
const change = z.strictObject({
  action: z.enum(['create', 'update', 'replace', 'delete']),
  id: z.string().max(1024),
  kind: z.string().refine(isResourceKind, 'a resource kind lbprov knows'),
  before: z.unknown(),
  after: z.unknown(),
});
const planSchema = z.strictObject({
  version: z.literal(2, 'a plan saved by this version of lbprov (version 2)'),
  createdAt: z.string().max(64),
  inventory: source,
  playbook: source,
  hosts: z.array(
    z.strictObject({
      gateway: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/),
      fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
      notes: z.array(z.string().max(8192)),
      changes: z.array(change),
    }),
  ),
});

export function loadSavedPlan(path: string): Plan {
  let data: unknown;
  try {
    if (statSync(path).size > MAX_PLAN_BYTES) throw new Error(`larger than ${MAX_PLAN_BYTES} bytes`);
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(path, 'plan', `cannot read the saved plan: ${(e as Error).message}`);
  }
  const parsed = planSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(path, issue?.path.join('.') || 'plan', issue?.message ?? 'not a saved plan');
  }
  const hosts = parsed.data.hosts.map((h, hi): HostPlan => ({
    gateway: h.gateway,
    fingerprint: h.fingerprint,
    notes: h.notes,
    changes: h.changes.map((c, ci): ResourceChange => {
      const at = `hosts.${hi}.changes.${ci}`;
      try {
        const side = (value: unknown) => (value === null || value === undefined ? null : checkResource(value));
        if (!isResourceKind(c.kind)) throw new ResourceCheckError(`unknown resource kind ${c.kind}`);
        return checkedChange({ action: c.action, id: c.id, kind: c.kind, before: side(c.before), after: side(c.after) });
      } catch (e) {
        if (e instanceof ResourceCheckError || e instanceof IncoherentChangeError) throw new InputError(path, at, `refusing the saved plan: ${e.message}`);
        throw e;
      }
    }),
  }));
  const gateways = new Set<string>();
  for (const h of hosts) {
    if (gateways.has(h.gateway)) throw new InputError(path, 'hosts', `gateway ${h.gateway} appears twice`);
    gateways.add(h.gateway);
  }
  return { version: 2, createdAt: parsed.data.createdAt, inventory: parsed.data.inventory, playbook: parsed.data.playbook, hosts };
}

/** Refuses a plan whose inventory or playbook is not what the run loaded now. */
export function checkPlanSources(plan: Plan, planPath: string, now: { inventory: PlanSource; playbook: PlanSource }): void {
  for (const what of ['inventory', 'playbook'] as const) {
    const saved = plan[what];
    const current = now[what];
    if (saved.path !== current.path) {
      throw new InputError(planPath, what, `the plan was made from ${saved.path}, not ${current.path} (leave out -i/-p: the plan says which ${what} it came from)`);
    }
    if (saved.sha256 !== current.sha256) {
      throw new InputError(planPath, what, `${current.path} changed since the plan was made (make the plan again)`);
    }
  }
}

/** Why a saved host plan no longer fits the gateway, in words an admin can act on. */
export function describeDrift(saved: HostPlan, fresh: HostPlan): string[] {
  const key = (c: HostPlan['changes'][number]) => JSON.stringify([c.action, c.before, c.after]);
  const savedById = new Map(saved.changes.map((c) => [c.id, c]));
  const freshById = new Map(fresh.changes.map((c) => [c.id, c]));
  const drift: string[] = [];
  for (const [id, c] of freshById) {
    const s = savedById.get(id);
    if (!s) drift.push(`${id}: changed on the gateway since the plan (now needs ${c.action})`);
    else if (key(s) !== key(c)) drift.push(`${id}: changed on the gateway since the plan`);
  }
  for (const id of savedById.keys()) if (!freshById.has(id)) drift.push(`${id}: already as planned on the gateway (changed by someone else)`);
  if (drift.length === 0) drift.push('state outside the planned changes differs (addresses, link health or other lbprov resources)');
  return drift;
}
