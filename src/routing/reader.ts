/**
 * Reading `ip -N -j` output safely: a value that is not a valid interface name, IPv4 address or
 * number never comes out as one (Reader), output that is not a JSON array throws ParseError, and
 * the documents of one `ip -batch` are found by their brackets.
 */
import { ParseError, excerptOf } from '../errors.js';
import { isInterfaceName, isIpv4 } from '../model/net.js';

const MAX_JSON_CHARS = 64 * 1024 * 1024;
const MAX_ENTRIES = 2_000_000;

export const MAIN_TABLE = 254;
const TABLE_NAMES: Record<string, number> = { main: 254, local: 255, default: 253 };

// /etc/iproute2/rt_protos, for `proto NAME` in templates and non -N output.
const ROUTE_PROTOCOLS: Record<string, number> = {
  unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, gated: 8, ra: 9, mrt: 10, zebra: 11, bird: 12,
  dnrouted: 13, xorp: 14, ntk: 15, dhcp: 16, keepalived: 18, babel: 42, openr: 99, bgp: 186, isis: 187,
  ospf: 188, rip: 189, eigrp: 192,
};

export const IP_PROTOCOLS: Record<string, string> = { '1': 'icmp', '6': 'tcp', '17': 'udp', '47': 'gre', '50': 'esp', '51': 'ah', '132': 'sctp' };

// rtnetlink route types, numeric in -N output.
export const ROUTE_TYPES: Record<string, string> = {
  '1': 'unicast', '2': 'local', '3': 'broadcast', '4': 'anycast', '5': 'multicast', '6': 'blackhole',
  '7': 'unreachable', '8': 'prohibit', '9': 'throw', '10': 'nat',
};
export const RULE_ACTIONS = new Set(['blackhole', 'unreachable', 'prohibit']);

export class Reader {
  constructor(readonly what: string) {}

  fail(problem: string, value?: unknown): never {
    throw new ParseError(this.what, problem, undefined, value === undefined ? undefined : excerptOf(safeString(value)));
  }

  u32(value: unknown, label: string, base: 'auto' | 10 | 16 = 'auto'): number {
    let n: number | undefined;
    if (typeof value === 'number' && Number.isInteger(value)) n = value;
    else if (typeof value === 'string') {
      if (base === 16 && /^(0x)?[0-9a-f]{1,8}$/i.test(value)) n = parseInt(value.replace(/^0x/i, ''), 16);
      else if (base !== 16 && /^0x[0-9a-f]{1,8}$/i.test(value)) n = parseInt(value.slice(2), 16);
      else if (base === 'auto' && /^0[0-7]+$/.test(value)) n = parseInt(value, 8);
      else if (base !== 16 && /^\d{1,10}$/.test(value)) n = Number(value);
    }
    if (n === undefined || n < 0 || n > 0xffffffff) this.fail(`${label} is not a 32-bit number`, value);
    return n;
  }

  ipv4(value: unknown, label: string): string {
    if (typeof value !== 'string' || !isIpv4(value)) this.fail(`${label} is not an IPv4 address`, value);
    return value;
  }

  iface(value: unknown, label: string): string {
    if (typeof value !== 'string' || !isInterfaceName(value)) this.fail(`${label} is not an interface name`, value);
    return value;
  }

  table(value: unknown): number {
    if (typeof value === 'string' && value in TABLE_NAMES) return TABLE_NAMES[value]!;
    if (typeof value === 'string' && !/^\d+$/.test(value)) {
      this.fail('table is a name, not a number (read rules and routes with `ip -N`)', value);
    }
    return this.u32(value, 'table', 10);
  }

  protocol(value: unknown): number {
    if (typeof value === 'string' && value in ROUTE_PROTOCOLS) return ROUTE_PROTOCOLS[value]!;
    const n = this.u32(value, 'protocol', 10);
    if (n > 255) this.fail('protocol is out of range', value);
    return n;
  }

  /** A word that is safe to print back into `ip` syntax (group names, realms, unknown attributes). */
  word(value: unknown, label: string): string {
    const text = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
    if (typeof text !== 'string' || !/^[A-Za-z0-9_.\-/]{1,64}$/.test(text)) this.fail(`${label} has an unexpected value`, value);
    return text;
  }

  /** "a.b.c.d" or "a.b.c.d/len" with len 0..32. */
  prefix(text: string, label: string): { addr: string; len: number } {
    const [addr, len, extra] = text.split('/');
    if (extra !== undefined || addr === undefined || !isIpv4(addr)) this.fail(`${label} is not an IPv4 prefix`, text);
    if (len !== undefined && (!/^\d{1,2}$/.test(len) || Number(len) > 32)) this.fail(`${label} has a bad prefix length`, text);
    return { addr, len: len === undefined ? 32 : Number(len) };
  }
}

export function safeString(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** The JSON array `ip -j` prints, given either its text or its parsed value. */
export function jsonArray(input: unknown, what: string): unknown[] {
  let value = input;
  if (typeof input === 'string') {
    if (input.length > MAX_JSON_CHARS) throw new ParseError(what, `output is too large (${input.length} characters)`);
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new ParseError(what, `not valid JSON (truncated?): ${(err as Error).message}`);
    }
  }
  if (!Array.isArray(value)) throw new ParseError(what, 'expected a JSON array', undefined, excerptOf(safeString(value), 60));
  if (value.length > MAX_ENTRIES) throw new ParseError(what, `too many entries (${value.length})`);
  return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `ip -j -batch` output: one JSON document per command, in order. Recent iproute2 prints each on
 * a line of its own, older releases pretty-print them over many lines: the documents are found by
 * their brackets, whatever the whitespace. Exactly `count` of them, or the output is not what was
 * asked for.
 */
export function splitJsonDocuments(text: string, count: number, what: string): string[] {
  if (text.length > MAX_JSON_CHARS) throw new ParseError(what, `output is too large (${text.length} characters)`);
  const documents: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '[' || c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === ']' || c === '}') {
      if (--depth === 0) documents.push(text.slice(start, i + 1));
      if (depth < 0) throw new ParseError(what, 'unbalanced brackets');
    } else if (depth === 0 && !/\s/.test(c)) {
      throw new ParseError(what, 'text outside the JSON documents', undefined, excerptOf(text.slice(i, i + 40)));
    }
  }
  if (depth !== 0 || inString) throw new ParseError(what, 'the last JSON document is cut short');
  if (documents.length !== count) throw new ParseError(what, `expected ${count} JSON documents, got ${documents.length}`);
  return documents;
}
