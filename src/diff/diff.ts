/** diff(desired, current) -> the changes that make current equal desired. Pure. */
import type { Resource } from '../model/resources.js';
import type { ResourceChange } from '../model/plan.js';

export function sameResource(a: Resource, b: Resource): boolean {
  return JSON.stringify(comparable(a)) === JSON.stringify(comparable(b));
}

/** Content without the fields that name the resource; key order fixed so JSON compares. */
function comparable(r: Resource): unknown {
  switch (r.kind) {
    case 'chain':
      return [r.rules];
    case 'jump':
      return [r.rule];
    case 'ip-rule':
      return [r.selector];
    case 'route-table':
      return [[...r.routes].sort()];
    case 'sysctl':
      return [r.value];
    case 'file':
      return [r.mode, r.content];
    case 'module':
      return [r.module];
    case 'service':
      return [r.revision];
  }
}

/**
 * Desired resources missing from current are created, differing ones updated,
 * current ones no longer desired deleted (current only ever holds what lbprov owns).
 */
export function diffResources(desired: readonly Resource[], current: readonly Resource[]): ResourceChange[] {
  const now = new Map(current.map((r) => [r.id, r]));
  const wanted = new Set(desired.map((r) => r.id));
  const changes: ResourceChange[] = [];
  for (const d of desired) {
    const c = now.get(d.id);
    if (!c) changes.push({ action: 'create', id: d.id, kind: d.kind, before: null, after: d });
    else if (!sameResource(d, c)) changes.push({ action: 'update', id: d.id, kind: d.kind, before: c, after: d });
  }
  for (const c of current) {
    if (!wanted.has(c.id)) changes.push({ action: 'delete', id: c.id, kind: c.kind, before: c, after: null });
  }
  return changes;
}

/** The changes that undo `changes` (used for rollback): swap before and after. */
export function invertChanges(changes: readonly ResourceChange[]): ResourceChange[] {
  return changes.map((c) => {
    const action = c.action === 'create' ? 'delete' : c.action === 'delete' ? 'create' : 'update';
    return { action, id: c.id, kind: c.kind, before: c.after, after: c.before };
  });
}
