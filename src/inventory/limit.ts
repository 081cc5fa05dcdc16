/** Ansible-style `--limit` patterns over an inventory's gateways and groups. */

import { InputError } from '../errors.js';
import type { GatewaySpec, Inventory } from '../model/inventory.js';
import { preview } from './validators.js';

/**
 * `limit` is a list of terms separated by ',' or ':'. A term is a gateway name, a group name,
 * `all`, or a glob (`*`, `?`) over gateway and group names. `!term` removes, `&term` intersects.
 * As in Ansible, the result is (union of plain terms, or every gateway if there are none)
 * intersected with each `&` term, minus each `!` term, whatever their order. Unlike Ansible, a
 * term that matches nothing is an error: a mistyped `!gw-lyon-33` must not widen the run.
 * Gateways keep inventory order. No limit selects every gateway.
 */
export function selectGateways(inv: Inventory, limit?: string): GatewaySpec[] {
  if (limit === undefined) return [...inv.gateways];
  const terms = limit.split(/[,:]/).map((t) => t.trim()).filter((t) => t !== '');
  if (terms.length === 0) throw new InputError('--limit', preview(limit), 'names no gateway or group');

  const union = new Set<string>();
  const intersections: Set<string>[] = [];
  const exclusions = new Set<string>();
  for (const term of terms) {
    const operator = term[0] === '!' || term[0] === '&' ? term[0] : '';
    const matched = matchTerm(inv, term.slice(operator.length));
    if (operator === '!') matched.forEach((name) => exclusions.add(name));
    else if (operator === '&') intersections.push(matched);
    else matched.forEach((name) => union.add(name));
  }

  const start = union.size > 0 ? union : new Set(inv.gateways.map((g) => g.name));
  const selected = inv.gateways.filter(
    (g) => start.has(g.name) && intersections.every((set) => set.has(g.name)) && !exclusions.has(g.name),
  );
  if (selected.length === 0) throw new InputError('--limit', preview(limit), 'selects no gateway');
  return selected;
}

/** Gateway names a single term (without its operator) stands for. */
function matchTerm(inv: Inventory, pattern: string): Set<string> {
  const gatewayNames = inv.gateways.map((g) => g.name);
  if (pattern === 'all' || pattern === '*') return new Set(gatewayNames);
  const matches = /[*?]/.test(pattern) ? globMatcher(pattern) : (name: string) => name === pattern;
  const names = new Set(gatewayNames.filter(matches));
  for (const [group, members] of Object.entries(inv.groups)) {
    if (matches(group)) members.forEach((member) => names.add(member));
  }
  if (names.size === 0) throw new InputError('--limit', preview(pattern), 'matches no gateway or group in the inventory');
  return names;
}

function globMatcher(glob: string): (name: string) => boolean {
  const source = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}
