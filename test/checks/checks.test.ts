/**
 * Checks fed the facts parser's real input for several kernel shapes: this machine's
 * (everything built in: no /proc/modules, no /lib/modules), a modular Debian-like kernel,
 * and kernels where a piece is missing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFacts } from '../../src/facts/parse.js';
import type { FactsRequest } from '../../src/model/facts.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { GatewaySpec } from '../../src/model/inventory.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { renderDesiredState } from '../../src/render/desired.js';
import { enforcePrerequisites, runChecks } from '../../src/checks/index.js';
import { inPrefix } from '../../src/model/net.js';
import { RemoteError } from '../../src/errors.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const MARKER = 'fixturemarker0001';
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const request: FactsRequest = { sysctlKeys: ['net.ipv4.ip_forward'], filePaths: [], services: [], ranges: { priorityFirst: 100, priorityLast: 199, tables: new Set([101, 102]) }, firewall: 'iptables', firewallCandidates: ['iptables'] };

/** The captured facts output with some sections' bodies and exit codes replaced. */
function withSections(output: string, replace: Record<string, { body: string; rc: number }>): string {
  let out = output;
  for (const [name, { body, rc }] of Object.entries(replace)) {
    const re = new RegExp(`(@@${MARKER} begin ${name}\\n)[\\s\\S]*?\\n@@${MARKER} end ${name} \\d+\\n(?:@@${MARKER} stderr ${name}\\n[\\s\\S]*?\\n@@${MARKER} endstderr ${name}\\n)?`);
    expect(re.test(out), name).toBe(true);
    out = out.replace(re, `$1${body.replace(/\n$/, '')}\n@@${MARKER} end ${name} ${rc}\n`);
  }
  return out;
}

/** Parsed facts of a kernel shape, with the lab-shaped interfaces and settings of `gw`. */
function kernelFacts(gw: GatewaySpec, output: string): HostFacts {
  const parsed = parseFacts(gw.name, output, MARKER, request);
  const shaped = factsFor(gw);
  return { ...parsed, interfaces: shaped.interfaces, sysctls: { 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.wan1.rp_filter': '1', 'net.ipv4.conf.wan2.rp_filter': '2' } };
}

const builtinOutput = fixture('builtin-kernel.facts');
const modularOutput = withSections(builtinOutput, {
  'modules-loaded': { body: fixture('modular-proc-modules.txt'), rc: 0 },
  'modules-builtin': { body: fixture('modular-modules.builtin'), rc: 0 },
  'modules-available': { body: fixture('modular-available.txt'), rc: 0 },
  'ip-tables-matches': { body: fixture('modular-ip_tables_matches.txt'), rc: 0 },
  'ip-tables-targets': { body: fixture('modular-ip_tables_targets.txt'), rc: 0 },
});

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);
const render = (gw: GatewaySpec, facts: HostFacts) => renderDesiredState(gw, playbook, templates, facts);
const byId = (results: ReturnType<typeof runChecks>) => new Map(results.map((r) => [r.id, r]));

describe('a kernel with everything built in (this machine: no /proc/modules, no /lib/modules)', () => {
  const gw = gatewaySpec();
  const facts = kernelFacts(gw, builtinOutput);

  it('parses as no module support at all', () => {
    expect(facts.modules.loaded).toBeNull();
    expect(facts.modules.available).toBeNull();
    expect(facts.firewall.iptables?.registeredMatches).toContain('statistic');
  });

  it('reports every piece the rules use as present, and plans no module load', () => {
    const desired = render(gw, facts);
    const results = byId(runChecks(gw, facts, desired));
    for (const id of ['netfilter:match:statistic', 'netfilter:match:mark', 'netfilter:match:conntrack', 'netfilter:target:MARK', 'netfilter:target:CONNMARK', 'netfilter:target:MASQUERADE', 'netfilter:table:mangle', 'netfilter:table:nat']) {
      expect(results.get(id)?.status, id).toBe('ok');
    }
    expect(desired.filter((r) => r.kind === 'module')).toEqual([]);
    expect(desired.some((r) => r.id === 'file:/etc/modules-load.d/lbprov.conf')).toBe(false);
  });

  it('says condition is absent and that failover falls back to chain-swap', () => {
    const condition = byId(runChecks(gw, facts, render(gw, facts))).get('netfilter:match:condition');
    expect(condition?.status).toBe('ok');
    expect(condition?.message).toMatch(/chain-swap/);
    expect(condition?.remedy).toMatch(/xtables-addons-dkms/);
  });

  it('reports the sysctls the plan changes as fix, in the plan notes too', () => {
    const desired = render(gw, facts);
    const results = byId(runChecks(gw, facts, desired));
    expect(results.get('sysctl:net.ipv4.ip_forward')).toMatchObject({ status: 'fix', message: 'net.ipv4.ip_forward is 0; the plan sets 1' });
    expect(results.get('sysctl:net.ipv4.conf.wan2.rp_filter')?.status).toBe('ok');
    const notes = enforcePrerequisites(gw, facts, desired);
    expect(notes.some((n) => n.includes('net.ipv4.conf.wan1.rp_filter is 1; the plan sets 2'))).toBe(true);
  });
});

describe('a modular kernel (Debian-like, nf_tables backend)', () => {
  const gw = gatewaySpec();
  const facts = kernelFacts(gw, modularOutput);

  it('finds loaded modules, and a loadable one the rules need', () => {
    const results = byId(runChecks(gw, facts, render(gw, facts)));
    expect(results.get('netfilter:match:conntrack')).toMatchObject({ status: 'ok', message: expect.stringContaining('xt_conntrack is loaded') });
    expect(results.get('netfilter:table:nat')).toMatchObject({ status: 'ok', message: expect.stringContaining('nft_chain_nat is loaded') });
    expect(results.get('netfilter:match:statistic')).toMatchObject({ status: 'fix', message: expect.stringContaining('load xt_statistic') });
  });

  it('plans "load xt_statistic" and persists every non-built-in module the rules use', () => {
    const desired = render(gw, facts);
    expect(desired.filter((r) => r.kind === 'module').map((r) => r.id)).toEqual(['module:xt_statistic']);
    const file = desired.find((r) => r.id === 'file:/etc/modules-load.d/lbprov.conf');
    expect(file?.kind === 'file' && file.content.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'nf_tables', 'nft_chain_nat', 'xt_MASQUERADE', 'xt_connmark', 'xt_conntrack', 'xt_mark', 'xt_statistic',
    ]);
    const manifest = desired.find((r) => r.id === 'file:/etc/lbprov/manifest');
    expect(manifest?.kind === 'file' && manifest.content).toContain('/etc/modules-load.d/lbprov.conf');
  });

  it('once xt_statistic is loaded, wants no load and the same module list', () => {
    const before = render(gw, facts).find((r) => r.id === 'file:/etc/modules-load.d/lbprov.conf');
    const loaded = { ...facts, modules: { ...facts.modules, loaded: [...facts.modules.loaded!, 'xt_statistic'] } };
    const after = render(gw, loaded);
    expect(after.filter((r) => r.kind === 'module')).toEqual([]);
    expect(after.find((r) => r.id === 'file:/etc/modules-load.d/lbprov.conf')).toEqual(before);
  });

  it('with iptables-legacy, needs the iptable_* table modules instead', () => {
    const legacy = { ...facts, firewall: { ...facts.firewall, iptables: { ...facts.firewall.iptables!, variant: 'legacy' as const } } };
    const results = byId(runChecks(gw, legacy, render(gw, legacy)));
    expect(results.get('netfilter:table:mangle')).toMatchObject({ status: 'fix', message: expect.stringContaining('iptable_mangle') });
    expect(render(gw, legacy).filter((r) => r.kind === 'module').map((r) => r.id)).toEqual(['module:iptable_mangle', 'module:iptable_nat', 'module:xt_statistic']);
  });

  it('uses the condition match when xtables-addons is installed, and loads it', () => {
    const withAddons = { ...facts, modules: { ...facts.modules, available: [...facts.modules.available!, 'xt_condition'] } };
    const desired = render(gw, withAddons);
    expect(byId(runChecks(gw, withAddons, desired)).get('netfilter:match:condition')?.status).toBe('fix');
    expect(desired.map((r) => r.id)).toContain('module:xt_condition');
  });
});

describe('kernels missing a piece', () => {
  const gw = gatewaySpec();

  it('stops the gateway when statistic is neither loaded, built in nor installed, saying what to install', () => {
    const output = withSections(modularOutput, { 'modules-available': { body: fixture('modular-available.txt').replace('xt_statistic\n', ''), rc: 0 } });
    const facts = kernelFacts(gw, output);
    const desired = render(gw, facts);
    expect(byId(runChecks(gw, facts, desired)).get('netfilter:match:statistic')).toMatchObject({ status: 'fail', remedy: expect.stringContaining('CONFIG_NETFILTER_XT_MATCH_STATISTIC') });
    expect(() => enforcePrerequisites(gw, facts, desired)).toThrow(RemoteError);
    try {
      enforcePrerequisites(gw, facts, desired);
    } catch (e) {
      expect((e as RemoteError).reason).toBe('prerequisite');
      expect((e as RemoteError).message).toMatch(/statistic match/);
    }
  });

  it('a kernel without module support that lacks a match fails it', () => {
    const output = withSections(builtinOutput, { 'ip-tables-matches': { body: fixture('modular-ip_tables_matches.txt'), rc: 0 } });
    const facts = kernelFacts(gw, output);
    expect(byId(runChecks(gw, facts, render(gw, facts))).get('netfilter:match:statistic')).toMatchObject({ status: 'fail', message: expect.stringContaining('no loadable modules') });
  });

  it('failover: condition without xtables-addons fails with the install and the chain-swap fallback', () => {
    const forced: GatewaySpec = { ...gw, failover: 'condition' };
    const facts = kernelFacts(forced, builtinOutput);
    const condition = byId(runChecks(forced, facts, null)).get('netfilter:match:condition');
    expect(condition?.status).toBe('fail');
    expect(condition?.remedy).toMatch(/xtables-addons-dkms/);
    expect(condition?.remedy).toMatch(/chain-swap/);
  });

  it('a modular kernel without /lib/modules cannot tell: a warning, not a failure', () => {
    const output = withSections(modularOutput, { 'modules-available': { body: '', rc: 1 } });
    const facts = kernelFacts(gw, output);
    expect(byId(runChecks(gw, facts, render(gw, facts))).get('netfilter:match:statistic')?.status).toBe('warn');
  });
});

describe('tools and interfaces', () => {
  const gw = gatewaySpec();
  const base = kernelFacts(gw, builtinOutput);

  it('warns about rules in the other backend and a missing conntrack, fails without --noflush', () => {
    const facts = { ...base, tools: { ...base.tools, conntrack: false }, firewall: { ...base.firewall, iptables: { ...base.firewall.iptables!, otherVariantRules: 3, restore: false } } };
    const results = byId(runChecks(gw, facts, render(gw, facts)));
    expect(results.get('tool:iptables-backend')).toMatchObject({ status: 'warn', message: expect.stringContaining('3 rule(s) exist in the legacy backend') });
    expect(results.get('tool:conntrack')?.status).toBe('warn');
    expect(results.get('tool:iptables-restore')?.status).toBe('fail');
  });

  it('the captured tools section is this machine: nf_tables, --noflush, ip -json', () => {
    expect(base.tools).toMatchObject({ iproute2Json: true });
    expect(base.firewall).toMatchObject({ chosen: 'iptables', iptables: { variant: 'nf_tables', restore: true } });
  });

  it('fails a static next hop that is off-link; warns for a link that is down, missing or without an address (it joins when it comes up)', () => {
    const interfaces = [
      { name: 'lan0', up: false, ipv4: [] },
      { name: 'wan1', up: true, ipv4: ['198.51.100.2/30'] },
    ];
    const results = byId(runChecks(gw, { ...base, interfaces }, null));
    expect(results.get('nexthop:isp1')).toMatchObject({ status: 'fail', message: expect.stringContaining('203.0.113.1 is not inside') });
    expect(results.get('interface:wan2')).toMatchObject({ status: 'warn', message: expect.stringContaining('does not exist; it joins the pool when it comes up') });
    expect(results.get('interface:lan0')?.status).toBe('warn');
    const down = byId(runChecks(gw, { ...base, interfaces: [{ name: 'wan1', up: false, ipv4: ['203.0.113.2/29'] }] }, null));
    expect(down.get('interface:wan1')).toMatchObject({ status: 'warn', message: expect.stringMatching(/is down or has no carrier/) });
    const bare = byId(runChecks(gw, { ...base, interfaces: [{ name: 'wan1', up: true, ipv4: [] }] }, null));
    expect(bare.get('interface:wan1')).toMatchObject({ status: 'warn', message: expect.stringMatching(/has no IPv4 address/) });
  });

  it('checks a learned next hop like a static one, but only warns when it is off-link (the DHCP server decides it)', () => {
    const dhcp = { ...gw, links: [{ ...gw.links[0]!, nextHop: { kind: 'dhcp' as const }, probes: [] }, gw.links[1]!] };
    const facts = { ...base, interfaces: [{ name: 'wan1', up: true, ipv4: ['198.51.100.2/30'] }, ...base.interfaces.filter((i) => i.name !== 'wan1')] };
    const learned = byId(runChecks(dhcp, { ...facts, mainDefaultRoutes: [{ via: '198.51.100.1', dev: 'wan1', metric: 100 }] }, null));
    expect(learned.get('nexthop:isp1')).toMatchObject({ status: 'ok', message: 'link isp1: next hop 198.51.100.1 (learned from DHCP) is on-link (198.51.100.2/30)' });
    const odd = byId(runChecks(dhcp, { ...facts, dhcpLeases: { wan1: { address: '198.51.100.2', router: '192.0.2.1' } } }, null));
    expect(odd.get('nexthop:isp1')?.status).toBe('warn');
    const none = byId(runChecks(dhcp, { ...facts, mainDefaultRoutes: [] }, null));
    expect(none.get('interface:wan1')).toMatchObject({ status: 'warn', message: expect.stringContaining('no DHCP lease or default route for wan1 yet') });
  });

  it('inPrefix works on prefix edges', () => {
    expect(inPrefix('203.0.113.7', '203.0.113.2/29')).toBe(true);
    expect(inPrefix('203.0.113.8', '203.0.113.2/29')).toBe(false);
    expect(inPrefix('10.1.2.3', '10.0.0.1/8')).toBe(true);
    expect(inPrefix('198.51.100.1', '198.51.100.1/32')).toBe(true);
  });
});
