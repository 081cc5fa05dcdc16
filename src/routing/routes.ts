/**
 * `ip route`: the routing tables lbprov owns from `ip -N -j route show table N`, and
 * `ip route` argument text from templates, both into one canonical text that is itself valid
 * `ip route` syntax (without the table).
 */
import type { MainDefaultRoute } from '../model/facts.js';
import type { IpFamily, RouteTableResource } from '../model/resources.js';
import { resourceId } from '../model/resources.js';
import { ParseError, excerptOf } from '../errors.js';
import { isRecord, jsonArray, MAIN_TABLE, Reader, ROUTE_TYPES, safeString } from './reader.js';
import { ipv4ToNumber, isInterfaceName, isIpv4 } from '../model/net.js';

export interface CanonicalRoute {
  table: number;
  /** `ip route` text without table: "default via 203.0.113.1 dev wan1". */
  route: string;
}

interface Nexthop {
  via?: string;
  dev?: string;
  weight: number;
  onlink: boolean;
}

interface RouteFields {
  type?: string; // omitted for unicast
  dst: string;
  tos?: number;
  via?: string;
  dev?: string;
  src?: string;
  metric?: number;
  onlink: boolean;
  metrics: string[];
  nexthops: Nexthop[];
}

/** Order of `ip route show` (iproute2 print_route), minus what the kernel adds (proto, scope, state flags). */
function routeText(f: RouteFields): string {
  const out: string[] = [];
  if (f.type && f.type !== 'unicast') out.push(f.type);
  out.push(f.dst);
  if (f.tos) out.push('tos', `0x${f.tos.toString(16).padStart(2, '0')}`);
  if (f.via) out.push('via', f.via);
  if (f.dev) out.push('dev', f.dev);
  if (f.src) out.push('src', f.src);
  if (f.metric) out.push('metric', String(f.metric));
  if (f.onlink) out.push('onlink');
  out.push(...f.metrics);
  for (const hop of f.nexthops) {
    out.push('nexthop');
    if (hop.via) out.push('via', hop.via);
    if (hop.dev) out.push('dev', hop.dev);
    out.push('weight', String(hop.weight));
    if (hop.onlink) out.push('onlink');
  }
  return out.join(' ');
}

function routeDestination(r: Reader, text: string): string {
  if (text === 'default' || text === 'all' || text === 'any') return 'default';
  const { addr, len } = r.prefix(text, 'destination');
  if (len === 0) {
    if (addr !== '0.0.0.0') r.fail('destination has host bits set', text);
    return 'default';
  }
  const mask = len === 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0;
  // ip route add refuses host bits ("Invalid prefix for given prefix length"), so they mean a typo.
  if (((ipv4ToNumber(addr) & ~mask) >>> 0) !== 0) r.fail('destination has host bits set', text);
  return len === 32 ? addr : `${addr}/${len}`;
}

const ROUTE_JSON_IGNORED = new Set(['table', 'protocol', 'scope', 'pref', 'expires', 'cache', 'uid']);
const METRIC_KEYS = /^(mtu|advmss|window|rtt|rttvar|reordering|hoplimit|initcwnd|initrwnd|quickack|features|congctl|fastopen_no_cookie|ssthresh|cwnd|rto_min)$/;

function flagsOf(r: Reader, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) r.fail('flags is not a list of words', value);
  return value as string[];
}

/** One element of `ip -N -j route show table all`; a missing "table" is the main table. */
export function canonicalRouteFromJson(obj: unknown): CanonicalRoute {
  const r: Reader = new Reader('ip -j route');
  if (!isRecord(obj)) r.fail('route is not an object', obj);
  const table = obj.table === undefined ? MAIN_TABLE : r.table(obj.table);
  if (typeof obj.dst !== 'string') r.fail('route without a destination', obj);
  const f: RouteFields = { dst: routeDestination(r, obj.dst), onlink: false, metrics: [], nexthops: [] };
  for (const [key, value] of Object.entries(obj)) {
    switch (key) {
      case 'dst':
        break;
      case 'type':
        f.type = ROUTE_TYPES[String(value)] ?? r.word(value, 'type');
        break;
      case 'tos':
        f.tos = r.u32(value, 'tos', 16);
        break;
      case 'gateway':
        f.via = r.ipv4(value, 'gateway');
        break;
      case 'dev':
        f.dev = r.iface(value, 'dev');
        break;
      case 'prefsrc':
        f.src = r.ipv4(value, 'prefsrc');
        break;
      case 'metric':
        f.metric = r.u32(value, 'metric', 10);
        break;
      case 'flags':
        f.onlink = flagsOf(r, value).includes('onlink');
        break;
      case 'metrics':
        if (!Array.isArray(value)) r.fail('metrics is not a list', value);
        for (const m of value) {
          if (!isRecord(m)) r.fail('metric is not an object', m);
          for (const [name, v] of Object.entries(m)) {
            if (!METRIC_KEYS.test(name)) r.fail('unknown route metric', name);
            f.metrics.push(name, r.word(v, name));
          }
        }
        break;
      case 'nexthops':
        if (!Array.isArray(value)) r.fail('nexthops is not a list', value);
        for (const hop of value) {
          if (!isRecord(hop)) r.fail('nexthop is not an object', hop);
          f.nexthops.push({
            via: hop.gateway === undefined ? undefined : r.ipv4(hop.gateway, 'nexthop gateway'),
            dev: hop.dev === undefined ? undefined : r.iface(hop.dev, 'nexthop dev'),
            weight: hop.weight === undefined ? 1 : r.u32(hop.weight, 'weight', 10),
            onlink: flagsOf(r, hop.flags).includes('onlink'),
          });
        }
        break;
      default:
        if (!ROUTE_JSON_IGNORED.has(key)) r.fail(`unknown route attribute ${excerptOf(key)}`, value);
    }
  }
  return { table, route: routeText(f) };
}

const ROUTE_TYPE_WORDS = new Set(Object.values(ROUTE_TYPES));

/** `ip route add` arguments as a template writes them: "default via 203.0.113.1 dev wan1 table 101". */
export function canonicalRouteFromText(text: string): CanonicalRoute {
  const r: Reader = new Reader('ip route');
  if (/[\u0000-\u001f\u007f]/.test(text)) r.fail('control character in route', text);
  const args = text.trim().split(/ +/).filter((a) => a !== '');
  const f: RouteFields = { dst: '', onlink: false, metrics: [], nexthops: [] };
  let table = MAIN_TABLE;
  let hop: Nexthop | null = null;
  for (let i = 0; i < args.length; i++) {
    const key = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) r.fail(`${key} needs a value`);
      return v;
    };
    if (hop) {
      // Inside a nexthop: only its own keywords, until the next "nexthop".
      if (key === 'via') hop.via = r.ipv4(value(), 'via');
      else if (key === 'dev') hop.dev = r.iface(value(), 'dev');
      else if (key === 'weight') hop.weight = r.u32(value(), 'weight', 10);
      else if (key === 'onlink') hop.onlink = true;
      else if (key === 'nexthop') f.nexthops.push((hop = { weight: 1, onlink: false }));
      else r.fail(`unknown nexthop keyword ${excerptOf(key)}`);
      continue;
    }
    switch (key) {
      case 'to':
        f.dst = routeDestination(r, value());
        break;
      case 'via':
        f.via = r.ipv4(value(), 'via');
        break;
      case 'dev':
      case 'oif':
        f.dev = r.iface(value(), 'dev');
        break;
      case 'src':
        f.src = r.ipv4(value(), 'src');
        break;
      case 'metric':
      case 'preference':
      case 'priority':
        f.metric = r.u32(value(), 'metric', 10);
        break;
      case 'onlink':
        f.onlink = true;
        break;
      case 'table':
        table = r.table(value());
        break;
      case 'tos':
      case 'dsfield':
        f.tos = r.u32(value(), 'tos', 16);
        break;
      case 'proto':
      case 'protocol':
        r.protocol(value());
        break;
      case 'scope':
        r.word(value(), 'scope');
        break;
      case 'nexthop':
        f.nexthops.push((hop = { weight: 1, onlink: false }));
        break;
      default:
        if (METRIC_KEYS.test(key)) f.metrics.push(key, r.word(value(), key));
        else if (ROUTE_TYPE_WORDS.has(key) && f.dst === '' && f.type === undefined) f.type = key;
        else if (f.dst === '') f.dst = routeDestination(r, key);
        else r.fail(`unknown ip route keyword ${excerptOf(key)}`);
    }
  }
  if (f.dst === '') r.fail('route without a destination', text);
  return { table, route: routeText(f) };
}

/**
 * The routing tables lbprov owns from `ip -N -j route show table all` or `table N` (`listed`: N,
 * which that listing leaves out of its routes; a route without a table is the main table's in
 * `table all`): one resource per owned table that has routes, routes sorted. Other tables and
 * other families' routes are skipped.
 */
export function parseIpRoutes(json: unknown, family: IpFamily, tables: ReadonlySet<number>, listed = MAIN_TABLE): RouteTableResource[] {
  const reader: Reader = new Reader('ip -j route');
  const byTable = new Map<number, string[]>();
  for (const entry of jsonArray(json, 'ip -j route')) {
    if (!isRecord(entry)) throw new ParseError('ip -j route', 'route is not an object', undefined, excerptOf(safeString(entry)));
    if (typeof entry.dst === 'string' && entry.dst.includes(':')) continue;
    const table = entry.table === undefined ? listed : reader.table(entry.table);
    if (!tables.has(table)) continue;
    const { route } = canonicalRouteFromJson(entry);
    byTable.set(table, [...(byTable.get(table) ?? []), route]);
  }
  return [...byTable.entries()].sort(([a], [b]) => a - b).map(([table, routes]) => routeTableResource(family, table, routes));
}

/**
 * The main table's unicast default routes from `ip -N -j route show table main exact 0/0` (or
 * `table all`): the next hops the gateway's DHCP clients installed (routing/next-hop.ts learns a
 * link's router from them).
 */
export function parseMainDefaultRoutes(json: unknown): MainDefaultRoute[] {
  const out: MainDefaultRoute[] = [];
  // Foreign routes: whatever lbprov cannot read (a nexthop object, an odd field) is not one to learn from.
  for (const entry of jsonArray(json, 'ip -j route')) {
    if (!isRecord(entry) || entry.dst !== 'default' || entry.table !== undefined) continue;
    if (entry.type !== undefined && ROUTE_TYPES[String(entry.type)] !== 'unicast' && entry.type !== 'unicast') continue;
    const via = typeof entry.gateway === 'string' && isIpv4(entry.gateway) ? entry.gateway : null;
    const dev = typeof entry.dev === 'string' && isInterfaceName(entry.dev) ? entry.dev : null;
    const metric = typeof entry.metric === 'number' && Number.isInteger(entry.metric) && entry.metric >= 0 ? entry.metric : 0;
    if (via !== null || dev !== null) out.push({ via, dev, metric });
  }
  return out;
}

/** Routes sorted: the kernel lists them in its own order, a template in its. */
export function routeTableResource(family: IpFamily, table: number, routes: readonly string[]): RouteTableResource {
  return { kind: 'route-table', id: resourceId('route-table', String(table), family), family, table, routes: [...routes].sort() };
}

