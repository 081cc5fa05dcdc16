/** diff(desired, current) -> the changes that make current equal desired. Pure. */
import type { Resource } from '../model/resources.js';
import type { ResourceChange } from '../model/changes.js';
import { checkedChange, updateAction } from '../model/changes.js';

/** Resources are canonical already: the same content is the same JSON once keys are in one order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([k, v]) => k !== 'id' && v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sameResource(a: Resource, b: Resource): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * Desired resources missing from current are created, differing ones updated (or replaced, for
 * kinds whose update adds before it removes), current ones no longer desired deleted (current
 * only ever holds what lbprov owns).
 */
export function diffResources(desired: readonly Resource[], current: readonly Resource[]): ResourceChange[] {
  const now = new Map(current.map((r) => [r.id, r]));
  const wanted = new Set(desired.map((r) => r.id));
  const changes: ResourceChange[] = [];
  for (const d of desired) {
    const c = now.get(d.id);
    if (!c) changes.push(checkedChange({ action: 'create', id: d.id, kind: d.kind, before: null, after: d }));
    else if (!sameResource(d, c)) changes.push(checkedChange({ action: updateAction(d.kind), id: d.id, kind: d.kind, before: c, after: d }));
  }
  for (const c of current) {
    if (!wanted.has(c.id)) changes.push(checkedChange({ action: 'delete', id: c.id, kind: c.kind, before: c, after: null }));
  }
  return changes;
}
