/**
 * A gateway's `rules:` from the validated YAML: each one checked against the gateway's links and
 * LAN interfaces (errors), then against the rules before it (warnings: a rule an earlier one
 * shadows never matches; one on the same fields as an earlier one with another `via` whose
 * values overlap gets only what the earlier one leaves).
 */
import type { PolicyRule, PortRange } from '../model/inventory.js';
import type { RawRule } from './schema.js';
import type { YamlPath } from './yaml-source.js';
import { formatKey } from './yaml-source.js';

export interface RuleProblem {
  path: YamlPath;
  problem: string;
}

interface RuleContext {
  gateway: string;
  linkNames: readonly string[];
  lanInterfaces: readonly string[];
  locate: (path: YamlPath) => string;
}

function portRange(spec: number | string): PortRange {
  const [from, to] = String(spec).split('-').map(Number);
  return { from: from!, to: to ?? from! };
}

/** "a.b.c.d" -> "a.b.c.d/32": one spelling per prefix, so rules compare and render one way. */
function canonicalPrefix(text: string): string {
  return text.includes('/') ? text : `${text}/32`;
}

export function buildRules(raw: readonly RawRule[], ctx: RuleContext, problems: RuleProblem[]): { rules: PolicyRule[]; warnings: string[] } {
  const at = (...rest: (string | number)[]): YamlPath => ['gateways', ctx.gateway, 'rules', ...rest];
  const names = new Map<string, number>();
  const rules = raw.map((r, i): PolicyRule => {
    const first = names.get(r.name);
    if (first !== undefined) problems.push({ path: at(i, 'name'), problem: `rule name "${r.name}" is already used by rules[${first}]` });
    else names.set(r.name, i);
    if ((r.sport || r.dport) && r.proto !== 'tcp' && r.proto !== 'udp') {
      problems.push({ path: at(i, r.dport ? 'dport' : 'sport'), problem: 'ports need proto: tcp or udp' });
    }
    // nft refuses a set whose values overlap, and a prefix inside another says nothing more.
    for (const [key, bounds] of [['src', (r.src ?? []).map((x) => prefixBounds(canonicalPrefix(x)))], ['dst', (r.dst ?? []).map((x) => prefixBounds(canonicalPrefix(x)))], ['sport', (r.sport ?? []).map((x) => portBounds(portRange(x)))], ['dport', (r.dport ?? []).map((x) => portBounds(portRange(x)))]] as const) {
      bounds.forEach((b, j) => {
        const k = bounds.findIndex((other, m) => m < j && overlap(other, b));
        if (k >= 0) problems.push({ path: at(i, key, j), problem: `overlaps ${key}[${k}] of the same rule` });
      });
    }
    (r.lan ?? []).forEach((name, j) => {
      if (r.lan!.indexOf(name) !== j) problems.push({ path: at(i, 'lan', j), problem: `"${name}" is listed twice` });
      else if (!ctx.lanInterfaces.includes(name)) problems.push({ path: at(i, 'lan', j), problem: `"${name}" is not one of lan.interfaces (${ctx.lanInterfaces.join(', ')})` });
    });
    if (r.via !== 'main') {
      r.via.forEach((link, j) => {
        if (!ctx.linkNames.includes(link)) problems.push({ path: at(i, 'via', j), problem: `no link called "${link}" (links: ${ctx.linkNames.join(', ')})` });
        else if (r.via.indexOf(link) !== j) problems.push({ path: at(i, 'via', j), problem: `link "${link}" is listed twice` });
      });
    } else if (r.fallback !== undefined) {
      problems.push({ path: at(i, 'fallback'), problem: 'only a rule with via links has a fallback (via: main is never down)' });
    }
    return {
      name: r.name,
      src: (r.src ?? []).map(canonicalPrefix),
      dst: (r.dst ?? []).map(canonicalPrefix),
      proto: r.proto ?? null,
      sport: (r.sport ?? []).map(portRange),
      dport: (r.dport ?? []).map(portRange),
      lan: [...(r.lan ?? [])],
      via: r.via === 'main' ? { kind: 'main' } : { kind: 'links', links: [...r.via] },
      fallback: r.fallback ?? 'balance',
      source: ctx.locate(at(i)),
    };
  });
  return { rules, warnings: ruleWarnings(rules, at) };
}

function prefixBounds(prefix: string): Interval {
  const [address, length] = prefix.split('/');
  const base = address!.split('.').reduce((v, octet) => v * 256 + Number(octet), 0);
  return [base, base + 2 ** (32 - Number(length)) - 1];
}

type Interval = [number, number];

const portBounds = (r: PortRange): Interval => [r.from, r.to];
const inside = (inner: Interval, outer: Interval) => inner[0] >= outer[0] && inner[1] <= outer[1];
const overlap = (a: Interval, b: Interval) => a[0] <= b[1] && b[0] <= a[1];

/** The fields as value sets: intervals (addresses, ports) or words (protocol, LAN); empty matches all. */
function fieldsOf(rule: PolicyRule): { intervals: Interval[][]; words: string[][] } {
  return {
    intervals: [rule.src.map(prefixBounds), rule.dst.map(prefixBounds), rule.sport.map(portBounds), rule.dport.map(portBounds)],
    words: [rule.proto ? [rule.proto] : [], rule.lan],
  };
}

/** Every connection `later` matches, `earlier` matches too (each of its values inside one of earlier's). */
function covers(earlier: PolicyRule, later: PolicyRule): boolean {
  const a = fieldsOf(earlier);
  const b = fieldsOf(later);
  return (
    a.intervals.every((field, i) => field.length === 0 || (b.intervals[i]!.length > 0 && b.intervals[i]!.every((x) => field.some((y) => inside(x, y))))) &&
    a.words.every((field, i) => field.length === 0 || (b.words[i]!.length > 0 && b.words[i]!.every((w) => field.includes(w))))
  );
}

function intersects(earlier: PolicyRule, later: PolicyRule): boolean {
  const a = fieldsOf(earlier);
  const b = fieldsOf(later);
  return (
    a.intervals.every((field, i) => field.length === 0 || b.intervals[i]!.length === 0 || field.some((x) => b.intervals[i]!.some((y) => overlap(x, y)))) &&
    a.words.every((field, i) => field.length === 0 || b.words[i]!.length === 0 || field.some((w) => b.words[i]!.includes(w)))
  );
}

/** Which fields a rule restricts. */
const shape = (rule: PolicyRule) => [rule.src, rule.dst, rule.proto ? [rule.proto] : [], rule.sport, rule.dport, rule.lan].map((f) => (f.length ? 1 : 0)).join('');

const viaText = (rule: PolicyRule) => (rule.via.kind === 'main' ? 'main' : rule.via.links.join(','));

function ruleWarnings(rules: readonly PolicyRule[], at: (...rest: (string | number)[]) => YamlPath): string[] {
  const warnings: string[] = [];
  rules.forEach((later, j) => {
    for (let i = 0; i < j; i++) {
      const earlier = rules[i]!;
      const where = `${later.source}: ${formatKey(at(j))}`;
      if (covers(earlier, later)) {
        warnings.push(`${where}: rule ${later.name} never matches: rule ${earlier.name} (rules[${i}]) takes every connection it would`);
        return;
      }
      // Rules on different fields (a port rule and a destination rule) overlap by design: first match wins.
      if (shape(earlier) === shape(later) && intersects(earlier, later) && viaText(earlier) !== viaText(later)) {
        warnings.push(`${where}: rule ${later.name} overlaps rule ${earlier.name} (rules[${i}]), which goes via ${viaText(earlier)}: the first match wins`);
      }
    }
  });
  return warnings;
}
