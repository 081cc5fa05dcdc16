import { describe, expect, it } from 'vitest';
import { planSteps } from '../../src/apply/steps.js';
import { diffResources } from '../../src/diff/diff.js';
import type { Resource } from '../../src/model/resources.js';
import { stdinPayloads } from '../helpers/stdin-payloads.js';

const chain = (name: string, rules: string[]): Resource => ({ kind: 'chain', id: `chain:mangle:${name}`, family: 'ipv4', table: 'mangle', chain: name, rules });

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

  it('changes routes and rules one command per step, each undone by its own inverse (a failure part-way undoes exactly what ran)', () => {
    const table = (routes: string[]): Resource => ({ kind: 'route-table', id: 'route-table:101', family: 'ipv4', table: 101, routes });
    const rule = (selector: string): Resource => ({ kind: 'ip-rule', id: 'ip-rule:111', family: 'ipv4', priority: 111, selector });
    const before = [table(['default via 203.0.113.1 dev wan1', '192.0.2.0/24 dev lan0']), rule('from 203.0.113.2 lookup 101')];
    const after = [table(['default via 203.0.113.9 dev wan1', '198.51.100.0/24 dev lan0']), rule('from 203.0.113.3 lookup 101')];
    const steps = planSteps(diffResources(after, before));
    const ip = (command: string) => stdinPayloads(command).map((p) => p.text.trim());
    expect(steps.map((s) => [ip(s.command), ip(s.undo)])).toEqual([
      [['route replace default via 203.0.113.9 dev wan1 table 101'], ['route replace default via 203.0.113.1 dev wan1 table 101']],
      [['route replace 198.51.100.0/24 dev lan0 table 101'], ['route del 198.51.100.0/24 dev lan0 table 101']],
      [['route del 192.0.2.0/24 dev lan0 table 101'], ['route replace 192.0.2.0/24 dev lan0 table 101']],
      [['rule add priority 111 from 203.0.113.3 lookup 101'], ['rule del priority 111 from 203.0.113.3 lookup 101']],
      [['rule del priority 111 from 203.0.113.2 lookup 101'], ['rule add priority 111 from 203.0.113.2 lookup 101']],
    ]);
  });
});
