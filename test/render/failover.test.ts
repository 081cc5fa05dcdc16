import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { renderDesiredState, resourcesFromText } from '../../src/render/desired.js';
import { ownedRanges } from '../../src/model/ownership.js';
import { buildFailoverView, chooseMechanism } from '../../src/render/failover-view.js';
import { buildBalancerView } from '../../src/render/view-model.js';
import type { GatewaySpec, FailoverMode } from '../../src/model/inventory.js';
import type { HostFacts, ModuleFacts } from '../../src/model/facts.js';
import type { FileResource, IptablesChainResource, Resource } from '../../src/model/resources.js';
import { iptablesBackend } from '../../src/firewall/iptables/index.js';
import { RemoteError } from '../../src/errors.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);

function gateway(weights: number[], failover: FailoverMode = 'auto'): GatewaySpec {
  const gw = gatewaySpec(weights);
  return { ...gw, failover, links: gw.links.map((l) => ({ ...l, monitor: { intervalS: 2, timeoutS: 1, reliability: 1, down: 3, up: 3, latencyMs: null, lossPct: null, window: 10, flap: null } })) };
}

/** Module facts, and the matches iptables lists as registered. */
type KernelSide = Partial<ModuleFacts> & { registeredMatches?: string[] };

function factsWith(gw: GatewaySpec, { registeredMatches, ...modules }: KernelSide = {}, health: Record<string, string> = {}): HostFacts {
  const facts = factsFor(gw, health);
  const iptables = { ...facts.firewall.iptables!, registeredMatches: registeredMatches ?? [] };
  return { ...facts, modules: { ...facts.modules, ...modules }, firewall: { ...facts.firewall, iptables } };
}

const healthFor = (gw: GatewaySpec, mask: number) =>
  Object.fromEntries(gw.links.flatMap((l, i) => ((mask >> i) & 1 ? [] : [[`link.${l.name}`, 'down']])));

const balanceOf = (rs: Resource[]) => (rs.find((r) => r.id === 'ipv4/iptables-chain:mangle:LBPROV_BALANCE') as IptablesChainResource).rules;
const fileOf = (rs: Resource[], path: string) => (rs.find((r) => r.id === `file:${path}`) as FileResource).content;

/** balance.variants split into mask -> the LBPROV_BALANCE rules of its payload (canonical, as the diff sees them). */
function variantsOf(gw: GatewaySpec, text: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const block of text.split(/^@variant /m).slice(1)) {
    const mask = Number(block.slice(0, block.indexOf(' ')));
    const payload = block.slice(block.indexOf('\n') + 1);
    const [chain, ...rest] = resourcesFromText({ type: 'firewall', backend: 'iptables', table: 'mangle', template: 'v' }, payload, 'balance.variants', ownedRanges(gw), iptablesBackend);
    expect(rest).toEqual([]);
    expect(chain!.id).toBe('ipv4/iptables-chain:mangle:LBPROV_BALANCE');
    out.set(mask, (chain as IptablesChainResource).rules);
  }
  return out;
}

describe('failover mechanism choice', () => {
  const cases: { mode: FailoverMode; modules: KernelSide; mechanism: string; why: RegExp }[] = [
    { mode: 'auto', modules: {}, mechanism: 'chain-swap', why: /auto: the xtables-addons condition match is absent/ },
    { mode: 'auto', modules: { registeredMatches: ['mark', 'condition'] }, mechanism: 'condition', why: /auto: registered in \/proc\/net\/ip_tables_matches/ },
    { mode: 'auto', modules: { loaded: ['xt_condition'] }, mechanism: 'condition', why: /auto: module xt_condition is loaded/ },
    { mode: 'auto', modules: { builtin: ['xt_condition'] }, mechanism: 'condition', why: /auto: xt_condition is built into the kernel/ },
    { mode: 'auto', modules: { available: ['xt_condition'] }, mechanism: 'condition', why: /auto: module xt_condition is installed/ },
    { mode: 'chain-swap', modules: { registeredMatches: ['condition'] }, mechanism: 'chain-swap', why: /set in the inventory/ },
    { mode: 'condition', modules: { registeredMatches: ['condition'] }, mechanism: 'condition', why: /set in the inventory; registered/ },
  ];
  it.each(cases)('$mode with $modules -> $mechanism', ({ mode, modules, mechanism, why }) => {
    const gw = gateway([3, 1], mode);
    const choice = chooseMechanism(gw, iptablesBackend, factsWith(gw, modules));
    expect(choice.mechanism).toBe(mechanism);
    expect(choice.note).toMatch(why);
    expect(buildBalancerView(gw, iptablesBackend, factsWith(gw, modules)).failover.note).toBe(choice.note);
  });

  it('refuses a forced condition where the match is absent, naming the gateway and the setting', () => {
    const gw = gateway([3, 1], 'condition');
    const attempt = () => renderDesiredState(gw, playbook, templates, factsWith(gw));
    expect(attempt).toThrow(RemoteError);
    expect(attempt).toThrow(/^gw-a1: failover: condition is set \(test\.yml:1\) but the xtables-addons condition match is not available/);
    try {
      attempt();
    } catch (e) {
      expect((e as RemoteError).reason).toBe('prerequisite');
    }
  });
});

describe('chain-swap variants (balance.variants)', () => {
  it.each([
    [[3, 1], 3],
    [[5, 2, 1], 7],
    [[1, 2, 3, 4, 5, 6, 7, 8], 255],
  ])('weights %j give %i variants, one per non-empty set of links', (weights, count) => {
    const gw = gateway(weights);
    const variants = variantsOf(gw, fileOf(renderDesiredState(gw, playbook, templates, factsWith(gw)), '/etc/lbprov/balance.variants'));
    expect([...variants.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  });

  it('holds, for every set of healthy links, exactly the chain `up` renders for that set', () => {
    const gw = gateway([5, 2, 1]);
    const variants = variantsOf(gw, fileOf(renderDesiredState(gw, playbook, templates, factsWith(gw)), '/etc/lbprov/balance.variants'));
    for (let mask = 1; mask < 8; mask++) {
      expect(variants.get(mask), `variant ${mask}`).toEqual(balanceOf(renderDesiredState(gw, playbook, templates, factsWith(gw, {}, healthFor(gw, mask)))));
    }
  });

  it('keeps the monitor files and its revision independent of link health (a swap is not a restart)', () => {
    const gw = gateway([3, 1]);
    const healthy = renderDesiredState(gw, playbook, templates, factsWith(gw));
    const degraded = renderDesiredState(gw, playbook, templates, factsWith(gw, {}, { 'link.isp1': 'down' }));
    expect(balanceOf(degraded)).not.toEqual(balanceOf(healthy));
    for (const id of ['service:monitor', 'file:/etc/lbprov/monitor.sh', 'file:/etc/lbprov/monitor.conf', 'file:/etc/lbprov/balance.variants']) {
      expect(degraded.find((r) => r.id === id), id).toEqual(healthy.find((r) => r.id === id));
    }
  });
});

describe('condition mechanism', () => {
  /** Marks the rules give `packets` NEW packets, with nth counters that see every packet (fact 7). */
  function simulate(rules: string[], up: Set<string>, packets: number): string[] {
    return Array.from({ length: packets }, (_, k) => {
      let mark = '';
      for (const rule of rules) {
        const nth = /--every (\d+) --packet (\d+)/.exec(rule);
        if (nth && k % Number(nth[1]) !== Number(nth[2])) continue;
        const conditions = [...rule.matchAll(/-m condition (! )?--condition (\S+)/g)];
        if (conditions.every(([, negated, name]) => up.has(name!) !== !!negated)) mark = /--set-xmark (\S+)/.exec(rule)![1]!;
      }
      return mark;
    });
  }

  it('puts statistic before condition in every counting rule, so each counter advances on every packet', () => {
    const gw = gateway([5, 2, 1]);
    const rules = balanceOf(renderDesiredState(gw, playbook, templates, factsWith(gw, { registeredMatches: ['condition'] })));
    const counting = rules.filter((r) => r.includes('-m statistic'));
    expect(counting.length).toBeGreaterThan(0);
    for (const r of counting) expect(r.indexOf('-m statistic')).toBeLessThan(r.indexOf('-m condition'));
    for (const r of rules) expect([...r.matchAll(/-m condition/g)]).toHaveLength(3);
  });

  it('marks in weight ratio over whichever links are up, without swapping anything', () => {
    const gw = gateway([5, 2, 1]);
    // The chain is static: health does not change it.
    const rules = balanceOf(renderDesiredState(gw, playbook, templates, factsWith(gw, { registeredMatches: ['condition'] }, { 'link.isp2': 'down' })));
    expect(rules).toEqual(balanceOf(renderDesiredState(gw, playbook, templates, factsWith(gw, { registeredMatches: ['condition'] }))));
    const marks = ['0x10000000/0xf0000000', '0x20000000/0xf0000000', '0x30000000/0xf0000000'];
    for (let mask = 1; mask < 8; mask++) {
      const up = new Set(gw.links.filter((_, i) => (mask >> i) & 1).map((l) => `lbprov_${l.name}`));
      // 840 packets: a whole number of cycles for every pool size (8, 7, 6, 5, 3, 2, 1).
      const counts = marks.map((m) => simulate(rules, up, 840).filter((x) => x === m).length);
      const weights = gw.links.map((l, i) => ((mask >> i) & 1 ? l.weight : 0));
      const total = weights.reduce((a, b) => a + b, 0);
      expect(counts, `links up: ${[...up].join(',')}`).toEqual(weights.map((w) => (840 * w) / total));
    }
  });

  it('ships no variants and tells the monitor which mechanism and variables to use', () => {
    const gw = gateway([3, 1]);
    const desired = renderDesiredState(gw, playbook, templates, factsWith(gw, { registeredMatches: ['condition'] }));
    expect(fileOf(desired, '/etc/lbprov/balance.variants')).not.toMatch(/^@variant/m);
    const conf = fileOf(desired, '/etc/lbprov/monitor.conf');
    expect(conf).toContain('mechanism="condition"');
    expect(conf).toContain('link1_condition="lbprov_isp1"');
    expect(conf).toContain('link2_condition="lbprov_isp2"');
  });
});

describe('monitor settings (monitor.conf)', () => {
  it('carries every per-link setting and the init system, and nothing a lease or address change would alter', () => {
    const gw = gateway([3, 1]);
    gw.links[1] = { ...gw.links[1]!, probes: ['198.51.100.9', '192.0.2.9'], monitor: { intervalS: 5, timeoutS: 2, reliability: 2, down: 4, up: 6, latencyMs: null, lossPct: null, window: 10, flap: null } };
    const facts = factsWith(gw);
    facts.tools = { ...facts.tools, initSystem: 'systemd' };
    const conf = fileOf(renderDesiredState(gw, playbook, templates, facts), '/etc/lbprov/monitor.conf');
    for (const line of [
      'init="systemd"',
      'link_count="2"',
      'link2_name="isp2"',
      'link2_interface="wan2"',
      'link2_kind="static"',
      'link2_nexthop="203.0.113.9"',
      'link2_table="102"',
      'link2_source_priority="112"',
      'link2_mark="0x20000000"',
      'link2_weight="1"',
      'link2_probes="198.51.100.9 192.0.2.9"',
      'link2_interval="5"',
      'link2_interval_cs="500"',
      'link2_timeout_ms="2000"',
      'link2_reliability="2"',
      'link2_down="4"',
      'link2_up="6"',
      'own_table="116"',
    ]) {
      expect(conf).toContain(`\n${line}\n`);
    }
    // The monitor reads addresses and learned next hops itself: a renewal changes no file.
    const renumbered = factsWith(gw);
    renumbered.tools = facts.tools;
    renumbered.interfaces = renumbered.interfaces.map((i) => (i.name === 'wan2' ? { ...i, ipv4: ['198.51.100.200/24'] } : i));
    expect(fileOf(renderDesiredState(gw, playbook, templates, renumbered), '/etc/lbprov/monitor.conf')).toBe(conf);
    expect(conf).not.toContain('203.0.113.10');
  });

  it('renders without facts (the pre-render that decides what to read)', () => {
    const view = buildFailoverView(gateway([3, 1]), iptablesBackend, null, new Set(['isp1', 'isp2'])).failover;
    expect(view.mechanism).toBe('chain-swap');
    expect(view.variants).toHaveLength(3);
  });
});
