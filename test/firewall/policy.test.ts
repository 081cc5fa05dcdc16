/**
 * Tiers, rules and sticky sources as each backend renders them, loaded by the real nft and
 * iptables-restore in a namespace and read back: what the kernel lists is what lbprov rendered
 * (so a plan after up shows no drift), every monitor variant loads, and the pools are the right
 * ones for each set of live links.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { nftResources } from '../../src/firewall/nftables/owned.js';
import { nftablesBackend, parseNftTable } from '../../src/firewall/nftables/index.js';
import { iptablesBackend, parseIptablesSave, ownedIptablesResources } from '../../src/firewall/iptables/index.js';
import { diffResources } from '../../src/diff/diff.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { renderDesiredState } from '../../src/render/desired.js';
import { ownedRanges } from '../../src/model/ownership.js';
import type { GatewaySpec, PolicyRule } from '../../src/model/inventory.js';
import type { FileResource, Resource } from '../../src/model/resources.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';
import { skipNetns, withNetns } from '../helpers/netns.js';
import { stdinPayloads } from '../helpers/stdin-payloads.js';

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);

function rule(name: string, fields: Partial<PolicyRule>): PolicyRule {
  return { name, src: [], dst: [], proto: null, sport: [], dport: [], lan: [], via: { kind: 'main' }, fallback: 'balance', source: 'test.yml:9', ...fields };
}

/** fibre 3 and dsl 1 on tier 1, lte 1 on tier 2; the three rules; sticky for 600 s. */
function policyGateway(firewall: 'nftables' | 'iptables'): GatewaySpec {
  const base = gatewaySpec([3, 1, 1]);
  const names = ['fibre', 'dsl', 'lte'];
  return {
    ...base,
    firewall,
    links: base.links.map((l, i) => ({ ...l, name: names[i]!, tier: i === 2 ? 2 : 1 })),
    sticky: { timeoutS: 600 },
    rules: [
      rule('voip', { proto: 'udp', dport: [{ from: 5060, to: 5060 }, { from: 10000, to: 20000 }], via: { kind: 'links', links: ['dsl'] } }),
      rule('office', { dst: ['203.0.113.0/24', '198.51.100.7/32'] }),
      rule('bulk', { src: ['192.0.2.128/25'], via: { kind: 'links', links: ['fibre', 'lte'] }, fallback: 'drop' }),
    ],
  };
}

const ofBackend = (rs: Resource[], kinds: readonly string[]) => rs.filter((r) => kinds.includes(r.kind));
const sorted = (rs: Resource[]) => [...rs].sort((a, b) => a.id.localeCompare(b.id));
const fileOf = (rs: Resource[], path: string) => rs.find((r): r is FileResource => r.kind === 'file' && r.path === path)!.content;

/** The apply steps' iptables-restore payloads, one per table. */
function loadIptables(run: (argv: string[], input?: string) => string, resources: Resource[]): void {
  for (const s of iptablesBackend.applySteps(diffResources(resources, []))) {
    for (const p of stdinPayloads(s.command).filter((x) => x.tool === 'iptables-restore')) run(['iptables-restore', '-w', '10', '--noflush'], p.text);
  }
}

/** Every "@variant MASK" block of balance.variants. */
function variants(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const block of text.split(/^@variant /m).slice(1)) out.set(block.split(' ')[0]!, block.slice(block.indexOf('\n') + 1));
  return out;
}

describe.skipIf(skipNetns)('rules, tiers and sticky sources on the real nft', () => {
  const gw = policyGateway('nftables');
  const desired = renderDesiredState(gw, playbook, templates, factsFor(gw, {}, 'nftables'));
  const nft = ofBackend(desired, nftablesBackend.kinds);

  it('loads, and lists back exactly as rendered (sets without their elements)', async () => {
    await withNetns((ns) => {
      const steps = nftablesBackend.applySteps(diffResources(nft, []));
      for (const s of steps) ns.run(['nft', '-f', '-'], stdinPayloads(s.command)[1]!.text);
      ns.run(['nft', 'add', 'element', 'ip', 'lbprov', 'sticky_fibre_600', '{ 192.0.2.200 }']);
      const listed = nftResources(parseNftTable(ns.run(['nft', '-s', '-t', 'list', 'table', 'ip', 'lbprov']), 'nft list'));
      expect(sorted(listed)).toEqual(sorted(nft));
      const prerouting = nft.find((r) => r.id === 'ipv4/nft-chain:prerouting');
      expect(prerouting).toMatchObject({
        rules: expect.arrayContaining([
          'iifname "lan0" ct state new udp dport { 5060, 10000-20000 } goto rule_voip',
          'iifname "lan0" ct state new ip daddr { 198.51.100.7, 203.0.113.0/24 } return',
          'iifname "lan0" ct state new ip saddr 192.0.2.128/25 goto rule_bulk',
        ]),
      });
    });
  });

  it('loads every variant; each puts the lowest live tier in the pools, sticky lookups first', async () => {
    const all = variants(fileOf(desired, '/etc/lbprov/balance.variants'));
    expect([...all.keys()]).toHaveLength(7);
    // fibre and dsl live: tier 1 only; voip on dsl; bulk on fibre (lte is tier 2).
    expect(all.get('3')).toContain('ip saddr @sticky_fibre_600 goto pick_fibre\n\t\tip saddr @sticky_dsl_600 goto pick_dsl\n\t\tnumgen inc mod 4');
    expect(all.get('3')).toMatch(/chain rule_voip \{\n\t\tip saddr @sticky_dsl_600 goto pick_dsl\n\t\tgoto pick_dsl\n/);
    // Only lte live: the pool and bulk take it; voip has no live link and falls back to the pool.
    expect(all.get('4')).toMatch(/chain balance \{\n\t\tip saddr @sticky_lte_600 goto pick_lte\n\t\tgoto pick_lte\n/);
    expect(all.get('4')).toMatch(/chain rule_voip \{\n\t\tgoto balance\n/);
    // dsl alone: bulk has none of its links and drops.
    expect(all.get('2')).toMatch(/chain rule_bulk \{\n\t\tdrop\n/);
    await withNetns((ns) => {
      for (const s of nftablesBackend.applySteps(diffResources(nft, []))) ns.run(['nft', '-f', '-'], stdinPayloads(s.command)[1]!.text);
      for (const [mask, payload] of all) {
        const loaded = ns.attempt(['nft', '-f', '-'], payload);
        expect(loaded.stderr, `variant ${mask}`).toBe('');
      }
      // The last one loaded (all live) is what the balance chain holds now: tier 1 only, 3:1.
      const balance = nftResources(parseNftTable(ns.run(['nft', '-s', '-t', 'list', 'table', 'ip', 'lbprov']), 'nft list')).find((r) => r.id === 'ipv4/nft-chain:balance');
      expect(balance).toMatchObject({ rules: expect.arrayContaining([expect.stringMatching(/^numgen inc mod 4 vmap/)]) });
      // The monitor's flush of a dead link's sources works on the set as rendered.
      ns.run(['nft', 'add', 'element', 'ip', 'lbprov', 'sticky_dsl_600', '{ 192.0.2.201 }']);
      ns.run(['sh', '-c', nftablesBackend.stickyFlush({ name: 'dsl', index: 2 }, gw.sticky!)]);
      expect(ns.run(['sh', '-c', nftablesBackend.stickyCount({ name: 'dsl', index: 2 }, gw.sticky!)]).trim()).toBe('0');
    });
  });
});

describe.skipIf(skipNetns)('rules, tiers and sticky sources on the real iptables', () => {
  const gw = policyGateway('iptables');
  const desired = renderDesiredState(gw, playbook, templates, factsFor(gw, {}, 'iptables'));
  const ipt = ofBackend(desired, iptablesBackend.kinds);

  it('loads, and iptables-save prints back exactly what was rendered', async () => {
    await withNetns((ns) => {
      loadIptables(ns.run, ipt);
      const owned = ownedIptablesResources(parseIptablesSave(ns.run(['iptables-save'])), 'ipv4');
      expect(sorted([...owned.chains, ...owned.jumps])).toEqual(sorted(ipt));
      const pre = ipt.find((r) => r.id === 'ipv4/iptables-chain:mangle:LBPROV_PRE');
      expect(pre).toMatchObject({
        rules: expect.arrayContaining([
          '-i lan0 -p udp -m conntrack --ctstate NEW -m mark --mark 0x0/0xf0000000 -m multiport --dports 5060,10000:20000 -j LBPROV_RULE1',
          '-d 198.51.100.7/32 -i lan0 -m conntrack --ctstate NEW -m mark --mark 0x0/0xf0000000 -j RETURN',
          '-s 192.0.2.128/25 -i lan0 -m conntrack --ctstate NEW -m mark --mark 0x0/0xf0000000 -j LBPROV_RULE3',
          '-i lan0 -m conntrack --ctstate NEW -m mark --mark 0x0/0xf0000000 -j LBPROV_BALANCE',
        ]),
      });
      ns.run(['sh', '-c', `${iptablesBackend.stickyFlush({ name: 'dsl', index: 2 }, gw.sticky!)} 2>/dev/null; true`]);
    });
  });

  it('loads every variant with iptables-restore --noflush', async () => {
    const all = variants(fileOf(desired, '/etc/lbprov/balance.variants'));
    expect(all.get('4')).toContain('-A LBPROV_RULE1 -j LBPROV_BALANCE');
    expect(all.get('2')).toContain('-A LBPROV_RULE3 -j DROP');
    await withNetns((ns) => {
      loadIptables(ns.run, ipt);
      for (const [mask, payload] of all) expect(ns.attempt(['iptables-restore', '-w', '10', '--noflush'], payload).stderr, `variant ${mask}`).toBe('');
      expect(ownedRanges(gw).tables.size).toBe(16);
    });
  });
});
