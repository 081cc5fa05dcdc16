import { describe, expect, it } from 'vitest';
import { firewallPayload, planSteps } from '../../src/apply/steps.js';
import { diffResources } from '../../src/diff/diff.js';
import type { Resource } from '../../src/model/resources.js';

const chain = (name: string, rules: string[]): Resource => ({ kind: 'chain', id: `chain:mangle:${name}`, family: 'ipv4', table: 'mangle', chain: name, rules });
const jump = (builtin: string, target: string): Resource => ({ kind: 'jump', id: `jump:mangle:${builtin}:${target}`, family: 'ipv4', table: 'mangle', chain: builtin, rule: `-j ${target}` });

describe('firewallPayload', () => {
  it('re-declares only changed chains and never a built-in one', () => {
    const changes = diffResources([chain('LBPROV_A', ['-j RETURN']), jump('PREROUTING', 'LBPROV_A')], []);
    const payload = firewallPayload('mangle', changes);
    expect(payload).toBe(['*mangle', ':LBPROV_A - [0:0]', '-A LBPROV_A -j RETURN', '-I PREROUTING 1 -j LBPROV_A', 'COMMIT', ''].join('\n'));
  });

  it('removes jumps, then empties every removed chain before deleting any (one may jump to another)', () => {
    // iptables-save order: LBPROV_BALANCE comes before LBPROV_PRE, which jumps to it.
    const current = [chain('LBPROV_BALANCE', ['-j MARK --set-xmark 0x1/0xff']), chain('LBPROV_PRE', ['-j LBPROV_BALANCE']), jump('PREROUTING', 'LBPROV_PRE')];
    const lines = firewallPayload('mangle', diffResources([], current)).split('\n');
    expect(lines).toEqual(['*mangle', '-D PREROUTING -j LBPROV_PRE', '-F LBPROV_BALANCE', '-F LBPROV_PRE', '-X LBPROV_BALANCE', '-X LBPROV_PRE', 'COMMIT', '']);
  });
});

describe('planSteps', () => {
  it('gives each step the exact inverse, in an order where nothing points at what is missing', () => {
    const desired: Resource[] = [
      { kind: 'file', id: 'file:/etc/lbprov/x', path: '/etc/lbprov/x', mode: '0644', content: 'x\n' },
      { kind: 'route-table', id: 'route-table:101', family: 'ipv4', table: 101, routes: ['default via 203.0.113.1 dev wan1'] },
      { kind: 'ip-rule', id: 'ip-rule:101', family: 'ipv4', priority: 101, selector: 'from all fwmark 0x1/0xff lookup 101' },
      chain('LBPROV_A', ['-j RETURN']),
    ];
    const steps = planSteps(diffResources(desired, []));
    expect(steps.map((s) => s.description)).toEqual(['+file:/etc/lbprov/x', '+route-table:101', '+ip-rule:101', 'iptables mangle: +LBPROV_A']);
    const undo = planSteps(diffResources([], desired)).map((s) => s.description);
    expect(undo).toEqual(['iptables mangle: -LBPROV_A', '-ip-rule:101', '-route-table:101', '-file:/etc/lbprov/x']);
  });
});
