/**
 * A change to one resource, typed by its kind: `before` and `after` are always
 * resources of the change's own kind, so no consumer ever casts them.
 */
import { REPLACED_ON_UPDATE, type Resource, type ResourceKind, type ResourceMap } from './resources.js';

/** create, update (rewritten in place), replace (the new one is added before the old one goes), delete. */
export type ChangeAction = 'create' | 'update' | 'replace' | 'delete';

export interface Created<K extends ResourceKind> {
  action: 'create';
  kind: K;
  id: string;
  before: null;
  after: ResourceMap[K];
}

export interface Updated<K extends ResourceKind> {
  action: 'update' | 'replace';
  kind: K;
  id: string;
  before: ResourceMap[K];
  after: ResourceMap[K];
}

export interface Deleted<K extends ResourceKind> {
  action: 'delete';
  kind: K;
  id: string;
  before: ResourceMap[K];
  after: null;
}

export type ChangeOf<K extends ResourceKind> = Created<K> | Updated<K> | Deleted<K>;

/** One member per kind: narrowing on `kind` narrows `before` and `after`. */
export type ResourceChange = { [K in ResourceKind]: ChangeOf<K> }[ResourceKind];

/** The fields of a change before they are known to agree (a diff's output, a saved plan's input). */
export interface UncheckedChange {
  action: ChangeAction;
  kind: ResourceKind;
  id: string;
  before: Resource | null;
  after: Resource | null;
}

/** The action's sides, and both sides of the change's own kind and id. */
export function isCoherentChange(c: UncheckedChange): c is ResourceChange {
  const sides = c.action === 'create' ? [c.before === null, c.after !== null] : c.action === 'delete' ? [c.before !== null, c.after === null] : [c.before !== null, c.after !== null];
  if (!sides.every(Boolean)) return false;
  return [c.before, c.after].every((r) => r === null || (r.kind === c.kind && r.id === c.id));
}

export class IncoherentChangeError extends Error {
  override name = 'IncoherentChangeError';
}

/** A change whose sides have been checked to be of its kind and id; anything else is a bug or a forged plan. */
export function checkedChange(c: UncheckedChange): ResourceChange {
  if (!isCoherentChange(c)) {
    throw new IncoherentChangeError(`change ${c.action} ${c.id} (${c.kind}): before/after are not ${c.kind} resources with that id, as the action needs`);
  }
  return c;
}

/** How an update of this kind is carried out: in place, or added before the old one is removed. */
export function updateAction(kind: ResourceKind): 'update' | 'replace' {
  return REPLACED_ON_UPDATE.has(kind) ? 'replace' : 'update';
}

/** The one place a change's action becomes the symbol a person reads (Terraform's). */
export const ACTION_SYMBOLS: Readonly<Record<ChangeAction, string>> = { create: '+', update: '~', replace: '+/-', delete: '-' };

/** The change that undoes `c`: sides swapped. */
export function invertChange(c: ResourceChange): ResourceChange {
  const action: ChangeAction = c.action === 'create' ? 'delete' : c.action === 'delete' ? 'create' : c.action;
  return checkedChange({ action, kind: c.kind, id: c.id, before: c.after, after: c.before });
}

/** Only the changes of one kind, typed. */
export function changesOfKind<K extends ResourceKind>(changes: readonly ResourceChange[], kind: K): Extract<ResourceChange, { kind: K }>[] {
  return changes.filter((c): c is Extract<ResourceChange, { kind: K }> => c.kind === kind);
}

/** The resource a change is about: what it creates or updates to, or what it deletes. */
export function subjectOf<K extends ResourceKind>(c: ChangeOf<K>): ResourceMap[K] {
  return c.action === 'delete' ? c.before : c.after;
}
