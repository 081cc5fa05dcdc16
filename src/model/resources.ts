/**
 * The unit of desired and current state. Both sides of a diff are lists of
 * Resource with canonical content, so comparing them is plain equality.
 * Resources of the routing and firewall layers carry their address family, and
 * so do their ids (`ipv4/ip-rule:112`): objects of two families never collide.
 */

export const IP_FAMILIES = ['ipv4'] as const;
export type IpFamily = (typeof IP_FAMILIES)[number];

export type IptablesTableName = 'mangle' | 'nat';

/** A whole chain lbprov owns (LBPROV_*): its rules in order, canonical iptables-save text. */
export interface IptablesChainResource {
  kind: 'iptables-chain';
  id: string;
  family: IpFamily;
  table: IptablesTableName;
  chain: string;
  rules: string[];
}

/** One rule in a built-in chain that jumps into an lbprov chain (`-A PREROUTING -j LBPROV_PRE`). */
export interface IptablesJumpResource {
  kind: 'iptables-jump';
  id: string;
  family: IpFamily;
  table: IptablesTableName;
  chain: string;
  rule: string;
}

/** lbprov's own nftables table of a family (`table ip lbprov`): present or not; its chains are resources of their own. */
export interface NftTableResource {
  kind: 'nft-table';
  id: string;
  family: IpFamily;
  name: string;
}

/**
 * One chain of lbprov's own nftables table: its declaration (`type filter hook prerouting
 * priority mangle; policy accept;`, empty for a regular chain) and its rules, as `nft list`
 * prints them.
 */
export interface NftChainResource {
  kind: 'nft-chain';
  id: string;
  family: IpFamily;
  chain: string;
  header: string;
  rules: string[];
}

/**
 * A set of lbprov's nftables table (the sticky sources of a link): its declaration lines as
 * `nft list` prints them (`type ipv4_addr`, `size 65535`, `flags dynamic,timeout`, `timeout 10m`).
 * Its elements are what the kernel learns at run time, never state lbprov sets.
 */
export interface NftSetResource {
  kind: 'nft-set';
  id: string;
  family: IpFamily;
  set: string;
  declaration: string[];
}

/** One `ip rule` at a priority lbprov owns. `selector` is canonical `ip rule` text after the priority. */
export interface RoutingRuleResource {
  kind: 'ip-rule';
  id: string;
  family: IpFamily;
  priority: number;
  selector: string;
}

/** All routes of one routing table lbprov owns, canonical `ip route` text, sorted. */
export interface RouteTableResource {
  kind: 'route-table';
  id: string;
  family: IpFamily;
  table: number;
  routes: string[];
}

export interface SysctlResource {
  kind: 'sysctl';
  id: string;
  key: string;
  value: string;
}

export interface FileResource {
  kind: 'file';
  id: string;
  path: string;
  /** Octal, e.g. "0644". */
  mode: string;
  content: string;
}

export interface KernelModuleResource {
  kind: 'module';
  id: string;
  module: string;
}

/**
 * A daemon lbprov runs on the gateway (the link monitor). Present means
 * running; `revision` is a hash of the files it runs from, so a changed
 * script or config shows as an update (a restart).
 */
export interface ServiceResource {
  kind: 'service';
  id: string;
  name: string;
  revision: string;
}

/** Every kind, by its name: the one list a new kind is added to. */
export interface ResourceMap {
  'iptables-chain': IptablesChainResource;
  'iptables-jump': IptablesJumpResource;
  'nft-table': NftTableResource;
  'nft-chain': NftChainResource;
  'nft-set': NftSetResource;
  'ip-rule': RoutingRuleResource;
  'route-table': RouteTableResource;
  sysctl: SysctlResource;
  file: FileResource;
  module: KernelModuleResource;
  service: ServiceResource;
}

export type ResourceKind = keyof ResourceMap;
export type Resource = ResourceMap[ResourceKind];
export type ResourceOf<K extends ResourceKind> = ResourceMap[K];

export const RESOURCE_KINDS: readonly ResourceKind[] = [
  'iptables-chain',
  'iptables-jump',
  'nft-table',
  'nft-chain',
  'nft-set',
  'ip-rule',
  'route-table',
  'sysctl',
  'file',
  'module',
  'service',
] satisfies readonly ResourceKind[];

export function isResourceKind(kind: unknown): kind is ResourceKind {
  return typeof kind === 'string' && (RESOURCE_KINDS as readonly string[]).includes(kind);
}

export function isKind<K extends ResourceKind>(kind: K) {
  return (r: Resource): r is ResourceOf<K> => r.kind === kind;
}

/** The resources of one kind, typed. */
export function ofKind<K extends ResourceKind>(resources: readonly Resource[], kind: K): ResourceOf<K>[] {
  return resources.filter(isKind(kind));
}

/** `ipv4/ip-rule:112`, `file:/etc/lbprov/monitor.sh`: the one way ids are spelled. */
export function resourceId(kind: ResourceKind, key: string, family?: IpFamily): string {
  return family ? `${family}/${kind}:${key}` : `${kind}:${key}`;
}

/** The id a resource's own fields give it (a saved plan or facts whose id says otherwise are refused). */
export function expectedId(r: Resource): string {
  switch (r.kind) {
    case 'iptables-chain':
      return resourceId(r.kind, `${r.table}:${r.chain}`, r.family);
    case 'iptables-jump':
      return resourceId(r.kind, `${r.table}:${r.chain}:${/-j (\S+)/.exec(r.rule)?.[1] ?? ''}`, r.family);
    case 'nft-table':
      return resourceId(r.kind, r.name, r.family);
    case 'nft-chain':
      return resourceId(r.kind, r.chain, r.family);
    case 'nft-set':
      return resourceId(r.kind, r.set, r.family);
    case 'ip-rule':
      return resourceId(r.kind, String(r.priority), r.family);
    case 'route-table':
      return resourceId(r.kind, String(r.table), r.family);
    case 'sysctl':
      return resourceId(r.kind, r.key);
    case 'file':
      return resourceId(r.kind, r.path);
    case 'module':
      return resourceId(r.kind, r.module);
    case 'service':
      return resourceId(r.kind, r.name);
  }
}

/** Duplicates of one object on the gateway (two jumps, two rules at a priority) get ids `<id>#2`, `#3`, ... */
export function duplicateId(id: string, count: number): string {
  return count === 1 ? id : `${id}#${count}`;
}

/** The text a person reads in a diff: one entry per line. */
export function resourceLines(r: Resource): string[] {
  switch (r.kind) {
    case 'iptables-chain':
      return r.rules;
    case 'iptables-jump':
      return [r.rule];
    case 'nft-table':
      return [`table ${r.family === 'ipv4' ? 'ip' : 'ip6'} ${r.name}`];
    case 'nft-chain':
      return [...(r.header ? [r.header] : []), ...r.rules];
    case 'nft-set':
      return r.declaration;
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

/**
 * Kinds whose update adds the new object before it removes the old one (an `ip rule` at a
 * priority): the plan calls that a replace. Every other update rewrites in place.
 */
export const REPLACED_ON_UPDATE: ReadonlySet<ResourceKind> = new Set<ResourceKind>(['ip-rule']);
