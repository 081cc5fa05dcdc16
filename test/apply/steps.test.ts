import { describe, expect, it } from 'vitest';
import { planSteps } from '../../src/apply/steps.js';
import { diffResources } from '../../src/diff/diff.js';
import type { Resource } from '../../src/model/resources.js';
import { stdinPayloads } from '../helpers/stdin-payloads.js';
import { chain, file, ipRule, routeTable } from '../helpers/resources.js';

describe('planSteps', () => {
  it('gives each step the exact inverse, in an order where nothing points at what is missing', () => {
    const desired: Resource[] = [
      file('/etc/lbprov/x', 'x\n'),
      routeTable(101, ['default via 203.0.113.1 dev wan1']),
      ipRule(101, 'from all fwmark 0x1/0xff lookup 101'),
      chain('LBPROV_A', ['-j RETURN']),
    ];
    const steps = planSteps(diffResources(desired, []));
    expect(steps.map((s) => s.description)).toEqual(['+file:/etc/lbprov/x', '+ipv4/route-table:101', '+ipv4/ip-rule:101', 'iptables mangle: +LBPROV_A']);
    const undo = planSteps(diffResources([], desired)).map((s) => s.description);
    expect(undo).toEqual(['iptables mangle: -LBPROV_A', '-ipv4/ip-rule:101', '-ipv4/route-table:101', '-file:/etc/lbprov/x']);
  });

  it('changes routes and rules one command per step, each undone by its own inverse (a failure part-way undoes exactly what ran)', () => {
    const before = [routeTable(101, ['default via 203.0.113.1 dev wan1', '192.0.2.0/24 dev lan0']), ipRule(111, 'from 203.0.113.2 lookup 101')];
    const after = [routeTable(101, ['default via 203.0.113.9 dev wan1', '198.51.100.0/24 dev lan0']), ipRule(111, 'from 203.0.113.3 lookup 101')];
    const steps = planSteps(diffResources(after, before));
    const ip = (command: string) => stdinPayloads(command).map((p) => p.text.trim());
    expect(steps.every((s) => s.command.includes('| ip -4 -batch -') && s.undo.includes('| ip -4 -batch -'))).toBe(true);
    expect(steps.map((s) => [ip(s.command), ip(s.undo)])).toEqual([
      [['route replace 198.51.100.0/24 dev lan0 table 101'], ['route del 198.51.100.0/24 dev lan0 table 101']],
      [['route replace default via 203.0.113.9 dev wan1 table 101'], ['route replace default via 203.0.113.1 dev wan1 table 101']],
      [['route del 192.0.2.0/24 dev lan0 table 101'], ['route replace 192.0.2.0/24 dev lan0 table 101']],
      [['rule add priority 111 from 203.0.113.3 lookup 101'], ['rule del priority 111 from 203.0.113.3 lookup 101']],
      [['rule del priority 111 from 203.0.113.2 lookup 101'], ['rule add priority 111 from 203.0.113.2 lookup 101']],
    ]);
  });

  it('stops a service it started in the undo, before its files go; restarts one that ran only once its files are back', () => {
    const monitor = (revision: string): Resource => ({ kind: 'service', id: 'service:monitor', name: 'monitor', revision });
    const script = file('/etc/lbprov/monitor.sh', '#!/bin/sh\n');
    const fresh = planSteps(diffResources([script, monitor('r1')], []));
    const service = fresh.find((s) => s.description.includes('service:monitor'))!;
    expect(service.undo).toBe("if [ -f /etc/lbprov/monitor.sh ]; then sh /etc/lbprov/monitor.sh stop; fi");
    expect(service.recover).toBeUndefined();
    // Undo runs newest first: the service stop comes before the file's removal.
    expect(fresh.indexOf(service)).toBeGreaterThan(fresh.findIndex((s) => s.description.includes('file:/etc/lbprov/monitor.sh')));
    const changed = planSteps(diffResources([script, monitor('r2')], [script, monitor('r1')])).find((s) => s.description.includes('service:monitor'))!;
    expect(changed).toMatchObject({ undo: 'true', recover: 'sh /etc/lbprov/monitor.sh restart r1' });
  });
});
