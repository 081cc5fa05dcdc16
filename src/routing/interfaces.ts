/**
 * The gateway's interfaces from `ip -j link show` and `ip -j -4 addr show`. Invalid names and
 * addresses are dropped with a warning: they cannot be ones the inventory names, since those
 * are validated the same way.
 */
import type { InterfaceFacts } from '../model/facts.js';
import { excerptOf, ParseError } from '../errors.js';
import { isInterfaceName, isIpv4 } from '../model/net.js';
import { isRecord, jsonArray, safeString } from './reader.js';


/**
 * Interfaces from `ip -j addr show`. `up` means administratively up with carrier
 * (flags UP and LOWER_UP). Invalid names and addresses are dropped with a warning.
 */
export function parseIpAddr(json: unknown, warnings: string[] = []): InterfaceFacts[] {
  const out: InterfaceFacts[] = [];
  const names = new Set<string>();
  for (const entry of jsonArray(json, 'ip -j addr')) {
    if (!isRecord(entry)) throw new ParseError('ip -j addr', 'interface is not an object', undefined, excerptOf(safeString(entry)));
    const name = entry.ifname;
    if (typeof name !== 'string' || !isInterfaceName(name)) {
      warnings.push(`ip addr: ignored an interface with an invalid name ${excerptOf(safeString(name))}`);
      continue;
    }
    if (names.has(name)) {
      warnings.push(`ip addr: interface ${name} listed twice; kept the first`);
      continue;
    }
    names.add(name);
    const flags = Array.isArray(entry.flags) ? entry.flags : [];
    const ipv4: string[] = [];
    const addrInfo = Array.isArray(entry.addr_info) ? entry.addr_info : [];
    for (const a of addrInfo) {
      if (!isRecord(a) || a.family !== 'inet') continue;
      const len = a.prefixlen;
      if (typeof a.local !== 'string' || !isIpv4(a.local) || typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > 32) {
        warnings.push(`ip addr: ignored an invalid IPv4 address on ${name}: ${excerptOf(safeString(a.local))}/${excerptOf(safeString(len))}`);
        continue;
      }
      ipv4.push(`${a.local}/${len}`);
    }
    out.push({ name, up: flags.includes('UP') && flags.includes('LOWER_UP'), ipv4 });
  }
  return out;
}

/**
 * Interfaces from `ip -j link show` (every interface, its flags) with the IPv4 addresses of
 * `ip -j -4 addr show` (which lists only interfaces that have one).
 */
export function parseInterfaces(linkJson: unknown, addrJson: unknown, warnings: string[] = []): InterfaceFacts[] {
  const links = parseIpAddr(linkJson, warnings);
  // The same names come again: report what only the address list says.
  const addrWarnings: string[] = [];
  const addresses = new Map(parseIpAddr(addrJson, addrWarnings).map((i) => [i.name, i.ipv4]));
  warnings.push(...addrWarnings.filter((w) => !warnings.includes(w)));
  return links.map((link) => ({ ...link, ipv4: addresses.get(link.name) ?? [] }));
}
