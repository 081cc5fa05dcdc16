/**
 * The unit of desired and current state. Both sides of a diff are lists of
 * Resource with canonical content, so comparing them is plain equality.
 */

export type IpFamily = 'ipv4';
export type FirewallTable = 'mangle' | 'nat';

/** A whole chain lbprov owns (LBPROV_*): its rules in order, canonical iptables-save text. */
export interface ChainResource {
  kind: 'chain';
  id: string; // chain:<table>:<name>
  family: IpFamily;
  table: FirewallTable;
  chain: string;
  rules: string[];
}

/** One rule in a built-in chain that jumps into an lbprov chain (`-A PREROUTING -j LBPROV_PRE`). */
export interface JumpResource {
  kind: 'jump';
  id: string; // jump:<table>:<builtin chain>:<target>
  family: IpFamily;
  table: FirewallTable;
  chain: string;
  rule: string;
}

/** One `ip rule` at a priority lbprov owns. `selector` is canonical `ip rule` text after the priority. */
export interface RoutingRuleResource {
  kind: 'ip-rule';
  id: string; // ip-rule:<priority>
  family: IpFamily;
  priority: number;
  selector: string;
}

/** All routes of one routing table lbprov owns, canonical `ip route` text, sorted. */
export interface RouteTableResource {
  kind: 'route-table';
  id: string; // route-table:<table>
  family: IpFamily;
  table: number;
  routes: string[];
}

export interface SysctlResource {
  kind: 'sysctl';
  id: string; // sysctl:<key>
  key: string;
  value: string;
}

export interface FileResource {
  kind: 'file';
  id: string; // file:<path>
  path: string;
  mode: string; // octal, e.g. "0644"
  content: string;
}

export interface KernelModuleResource {
  kind: 'module';
  id: string; // module:<name>
  module: string;
}

/**
 * A daemon lbprov runs on the gateway (the link monitor). Present means
 * running; `revision` is a hash of the files it runs from, so a changed
 * script or config shows as an update (a restart).
 */
export interface ServiceResource {
  kind: 'service';
  id: string; // service:<name>
  name: string;
  revision: string;
}

export type Resource =
  | ChainResource
  | JumpResource
  | RoutingRuleResource
  | RouteTableResource
  | SysctlResource
  | FileResource
  | KernelModuleResource
  | ServiceResource;

export type ResourceKind = Resource['kind'];

/** The text a person reads in a diff: one entry per line. */
export function resourceLines(r: Resource): string[] {
  switch (r.kind) {
    case 'chain':
      return r.rules;
    case 'jump':
      return [r.rule];
    case 'ip-rule':
      return [`${r.priority}: ${r.selector}`];
    case 'route-table':
      return r.routes;
    case 'sysctl':
      return [`${r.key} = ${r.value}`];
    case 'file':
      return r.content === '' ? [] : r.content.replace(/\n$/, '').split('\n');
    case 'module':
      return [`load ${r.module}`];
    case 'service':
      return [`running ${r.name} (revision ${r.revision})`];
  }
}
