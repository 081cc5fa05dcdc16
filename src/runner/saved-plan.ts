/** Saved plans: reviewed before a change window, applied as-is inside it, refused when stale. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { HostPlan, Plan } from '../model/plan.js';
import { InputError } from '../errors.js';

const planSchema = z.object({
  version: z.literal(1),
  inventory: z.string(),
  createdAt: z.string(),
  hosts: z.array(
    z.object({
      gateway: z.string(),
      fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
      notes: z.array(z.string()),
      changes: z.array(
        z.object({
          action: z.enum(['create', 'update', 'delete']),
          id: z.string(),
          kind: z.string(),
          before: z.unknown(),
          after: z.unknown(),
        }),
      ),
    }),
  ),
});

export function loadSavedPlan(path: string): Plan {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(path, 'plan', `cannot read the saved plan: ${(e as Error).message}`);
  }
  const parsed = planSchema.safeParse(data);
  if (!parsed.success) throw new InputError(path, parsed.error.issues[0]?.path.join('.') || 'plan', parsed.error.issues[0]?.message ?? 'not a saved plan');
  return parsed.data as Plan;
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
