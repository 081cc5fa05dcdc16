import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { GatewaySpec } from '../../src/model/inventory.js';
import type { HostPlan } from '../../src/model/plan.js';
import { diffResources } from '../../src/diff/diff.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { renderDesiredState } from '../../src/render/desired.js';
import { plainColours } from '../../src/report/plan-text.js';
import { buildJsonReport, compactNames, formatFleetPlan, formatRolloutRecap, groupPlans, normalisePerGateway, summarizeResults } from '../../src/report/fleet-plan.js';
import { parseMaxFail, parseSerial, runRollout } from '../../src/runner/rollout.js';
import type { HostResult } from '../../src/runner/fleet.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);

/** A first-run plan for a gateway whose link addresses (and optionally next hops) are its own. */
function firstRunPlan(name: string, index: number, options: { weights?: number[]; ownNextHops?: boolean } = {}): HostPlan {
  const base = gatewaySpec(options.weights ?? [3, 1]);
  const gw: GatewaySpec = {
    ...base,
    name,
    links: base.links.map((l, i) => (options.ownNextHops ? { ...l, gateway: `198.51.100.${100 + index * 2 + i}` } : l)),
  };
  const facts = factsFor(gw);
  facts.interfaces = facts.interfaces.map((iface, i) => (i === 0 ? iface : { ...iface, ipv4: [`203.0.113.${10 + index * 4 + i}/24`] }));
  const changes = diffResources(renderDesiredState(gw, playbook, templates, facts), []);
  return { gateway: name, changes, fingerprint: name, notes: [] };
}

describe('normalisePerGateway', () => {
  it('numbers addresses by first appearance and keeps prefix lengths and other numbers', () => {
    expect(normalisePerGateway('from 203.0.113.9 lookup 101\ndefault via 198.51.100.1 dev wan1 src 203.0.113.9 0x10000000/0xf0000000 10.0.0.0/8')).toBe(
      'from <ip1> lookup 101\ndefault via <ip2> dev wan1 src <ip1> 0x10000000/0xf0000000 <ip3>/8',
    );
    expect(normalisePerGateway('running monitor (revision 3fa9c1)\nmonitor 3fa9c1\n3fa9c12', undefined, ['3fa9c1'])).toBe('running monitor (revision <revision>)\nmonitor <revision>\n3fa9c12');
    expect(normalisePerGateway('# monitor of gw1 (not gw10, gw1_b, my-gw1), see gw1.', 'gw1')).toBe('# monitor of <gateway> (not gw10, gw1_b, my-gw1), see <gateway>.');
  });
});

describe('groupPlans', () => {
  it('groups real first-run plans that differ only in link addresses and next hops', () => {
    const plans = Array.from({ length: 6 }, (_, i) => firstRunPlan(`gw${i + 1}`, i, { ownNextHops: i % 2 === 0 }));
    // The concrete diffs really differ, or this test would prove nothing.
    expect(new Set(plans.map((p) => JSON.stringify(p.changes))).size).toBe(6);
    const groups = groupPlans(plans, plainColours);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.gateways).toEqual(['gw1', 'gw2', 'gw3', 'gw4', 'gw5', 'gw6']);
    expect(groups[0]!.addressesDiffer).toBe(true);
    expect(groups[0]!.representative.gateway).toBe('gw1');
  });

  it('splits on a real difference (weights) and puts the biggest group first', () => {
    const plans = [firstRunPlan('paris-1', 0, { weights: [5, 2, 1] }), ...[1, 2, 3].map((i) => firstRunPlan(`lyon-${i}`, i))];
    const groups = groupPlans(plans, plainColours);
    expect(groups.map((g) => g.gateways)).toEqual([['lyon-1', 'lyon-2', 'lyon-3'], ['paris-1']]);
  });

  it('identical plans group without an address note; no-change gateways form their own group', () => {
    const same = (gateway: string): HostPlan => ({
      gateway,
      fingerprint: gateway,
      notes: [],
      changes: [{ action: 'update', id: 'sysctl:net.ipv4.ip_forward', kind: 'sysctl', before: { kind: 'sysctl', id: 'sysctl:net.ipv4.ip_forward', key: 'net.ipv4.ip_forward', value: '0' }, after: { kind: 'sysctl', id: 'sysctl:net.ipv4.ip_forward', key: 'net.ipv4.ip_forward', value: '1' } }],
    });
    const none = (gateway: string): HostPlan => ({ gateway, fingerprint: gateway, notes: [], changes: [] });
    const groups = groupPlans([same('a'), none('b'), same('c'), none('d'), none('e')], plainColours);
    expect(groups.map((g) => [g.gateways, g.addressesDiffer])).toEqual([
      [['b', 'd', 'e'], false],
      [['a', 'c'], false],
    ]);
  });
});

describe('compactNames', () => {
  it('writes runs of three or more consecutive numbers as ranges', () => {
    expect(compactNames(['gw1', 'gw2', 'gw3', 'gw4', 'gw7', 'gw8', 'paris', 'lyon-09', 'lyon-10', 'lyon-11', 'gw5'])).toBe('gw1..gw4, gw7, gw8, paris, lyon-09..lyon-11, gw5');
    expect(compactNames([])).toBe('');
  });
});

describe('formatFleetPlan', () => {
  it('shows each distinct diff once with its gateways, a concrete example and totals', () => {
    const plans = [...Array.from({ length: 37 }, (_, i) => firstRunPlan(`gw-a${i + 1}`, i)), firstRunPlan('gw-b1', 40, { weights: [5, 2, 1] }), { gateway: 'gw-c1', fingerprint: 'x', notes: [], changes: [] }];
    const text = formatFleetPlan(plans, plainColours);
    expect(text).toContain('37 gateways: gw-a1..gw-a37\n  (addresses and names differ per gateway; shown for gw-a1)');
    expect(text).toContain('1 gateway: gw-b1');
    expect(text).toContain('1 gateway: gw-c1\n  no changes');
    expect(text).toContain('39 gateway(s) planned: 38 with changes, 1 without');
    // One concrete copy of the 3:1 balancing chain for the 37, one 5:2:1 copy: 2 in all.
    expect(text.match(/\+ ipv4\/iptables-chain:mangle:LBPROV_BALANCE/g)).toHaveLength(2);
    expect(text).toContain('from 203.0.113.11 lookup 101');
    expect(text).not.toContain('from 203.0.113.15 lookup 101');
    expect(text).toMatch(/^ {2}37 gateways: \d+ to add, 0 to change, 0 to remove each$/m);
    expect(text).toMatch(/^gw-b1: \d+ to add, 0 to change, 0 to remove$/m);
  });
});

describe('JSON report and rollout recap', () => {
  it('summarises a stopped rollout for CI and for people', async () => {
    const plan = firstRunPlan('gw1', 0);
    const outcome: Record<string, HostResult['status']> = { gw3: 'unreachable', gw5: 'failed' };
    const rollout = await runRollout(
      Array.from({ length: 10 }, (_, i) => ({ name: `gw${i + 1}` })),
      { serial: parseSerial('1,50%,100%'), maxFail: parseMaxFail('10%'), forks: 4 },
      async (gw): Promise<HostResult> => {
        const status = outcome[gw.name] ?? 'changed';
        return status === 'changed'
          ? { gateway: gw.name, status, plan: { ...plan, gateway: gw.name }, durationMs: 12.4 }
          : { gateway: gw.name, status, error: { message: `${gw.name}: ${status}`, reason: status === 'failed' ? 'apply' : 'unreachable' }, durationMs: 3 };
      },
    );
    const report = buildJsonReport(rollout.hosts, rollout);
    expect(report.summary).toEqual({ ok: 0, changed: 4, failed: 1, unreachable: 1, notStarted: 4 });
    expect(report.summary).toEqual(summarizeResults(rollout.hosts));
    expect(report.waves.map((w) => [w.index, w.gateways.length, w.failed, w.exceeded])).toEqual([
      [1, 1, 0, false],
      [2, 5, 2, true],
    ]);
    expect(report.stopped).toMatchObject({ afterWave: 2, reason: 'max-fail' });
    const gw2 = report.hosts.find((h) => h.gateway === 'gw2')!;
    expect(gw2).toMatchObject({ status: 'changed', wave: 2, durationMs: 12, error: null });
    expect(gw2.changes!.add).toBe(plan.changes.length);
    expect(gw2.resources).toContain('create ipv4/iptables-chain:mangle:LBPROV_BALANCE');
    expect(report.hosts.find((h) => h.gateway === 'gw5')).toMatchObject({ status: 'failed', wave: 2, changes: null, error: { reason: 'apply' } });
    expect(report.hosts.find((h) => h.gateway === 'gw9')).toMatchObject({ status: 'not-started', wave: 3 });
    // JSON round trip keeps it all (no undefined, no class instances).
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);

    const recap = formatRolloutRecap(rollout, plainColours);
    expect(recap).toMatch(/^gw5\s+failed\s+gw5: failed$/m);
    expect(recap).toMatch(/^gw3\s+unreachable/m);
    expect(recap).toMatch(/^gw10\s+not-started$/m);
    expect(recap).toContain('total 10: ok=0 changed=4 failed=1 unreachable=1 not-started=4');
    expect(recap).toContain('wave 2/3: 5 gateway(s), 2 failed (over --max-fail)');
    expect(recap).toContain('stopped after wave 2/3: 2 of 5 gateway(s) failed (more than 10% failed); 4 gateway(s) not started');
  });
});
