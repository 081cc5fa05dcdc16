/** Resources for pure tests, built by the same constructors the parsers use. */
import type { Resource } from '../../src/model/resources.js';
import { resourceId } from '../../src/model/resources.js';
import { iptablesChainResource, iptablesJumpResource } from '../../src/firewall/iptables/owned.js';
import { ipRuleResource, routeTableResource } from '../../src/routing/index.js';

export const chain = (name: string, rules: string[], table: 'mangle' | 'nat' = 'mangle'): Resource => iptablesChainResource('ipv4', table, name, rules);
export const jump = (builtin: string, target: string, table: 'mangle' | 'nat' = 'mangle'): Resource => iptablesJumpResource('ipv4', table, builtin, target, `-j ${target}`);
export const sysctl = (key: string, value: string): Resource => ({ kind: 'sysctl', id: resourceId('sysctl', key), key, value });
export const file = (path: string, content: string, mode = '0644'): Resource => ({ kind: 'file', id: resourceId('file', path), path, mode, content });
export const routeTable = (table: number, routes: string[]): Resource => routeTableResource('ipv4', table, routes);
export const ipRule = (priority: number, selector: string): Resource => ipRuleResource('ipv4', priority, selector);
