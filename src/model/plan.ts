import type { Resource } from './resources.js';

export type ChangeAction = 'create' | 'update' | 'delete';

export interface ResourceChange {
  action: ChangeAction;
  id: string;
  kind: Resource['kind'];
  before: Resource | null;
  after: Resource | null;
}

export interface HostPlan {
  gateway: string;
  changes: ResourceChange[];
  /** Facts fingerprint the plan was computed against. */
  fingerprint: string;
  /** Things the reader should know that are not changes (failover mechanism and why, warnings). */
  notes: string[];
}

export interface Plan {
  version: 1;
  inventory: string;
  createdAt: string;
  hosts: HostPlan[];
}

export function summarize(plan: HostPlan): { add: number; change: number; remove: number } {
  let add = 0;
  let change = 0;
  let remove = 0;
  for (const c of plan.changes) {
    if (c.action === 'create') add++;
    else if (c.action === 'update') change++;
    else remove++;
  }
  return { add, change, remove };
}
