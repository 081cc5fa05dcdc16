/** Plans: what a run would change per gateway, printable, serialisable and appliable as-is. */
import type { ResourceChange } from './changes.js';

export interface HostPlan {
  gateway: string;
  changes: ResourceChange[];
  /** Facts fingerprint the plan was computed against. */
  fingerprint: string;
  /** Things the reader should know that are not changes (backend and failover mechanism and why, warnings). */
  notes: string[];
}

/** A file a plan was made from, and its content's hash: a saved plan is refused when either moved. */
export interface PlanSource {
  path: string;
  sha256: string;
}

export interface Plan {
  version: 2;
  createdAt: string;
  /** The inventory, and the playbook with every template it renders from. */
  inventory: PlanSource;
  playbook: PlanSource;
  hosts: HostPlan[];
}

export function summarize(plan: HostPlan): { add: number; change: number; remove: number } {
  let add = 0;
  let change = 0;
  let remove = 0;
  for (const c of plan.changes) {
    if (c.action === 'create') add++;
    else if (c.action === 'delete') remove++;
    else change++;
  }
  return { add, change, remove };
}
