import { describe, expect, it } from 'vitest';
import { diffResources } from '../../src/diff/diff.js';
import { invertChange } from '../../src/model/changes.js';
import { chain, ipRule, sysctl } from '../helpers/resources.js';

describe('diffResources', () => {
  it('is empty when desired equals current, whatever the order', () => {
    const a = [chain('LBPROV_A', ['-j RETURN']), sysctl('net.ipv4.ip_forward', '1')];
    expect(diffResources(a, [...a].reverse())).toEqual([]);
  });

  it('creates, updates and deletes exactly what differs', () => {
    const desired = [chain('LBPROV_A', ['-j RETURN']), chain('LBPROV_B', ['-j ACCEPT']), sysctl('net.ipv4.ip_forward', '1')];
    const current = [chain('LBPROV_B', ['-j DROP']), chain('LBPROV_OLD', []), sysctl('net.ipv4.ip_forward', '1')];
    const changes = diffResources(desired, current);
    expect(changes.map((c) => [c.action, c.id])).toEqual([
      ['create', 'ipv4/iptables-chain:mangle:LBPROV_A'],
      ['update', 'ipv4/iptables-chain:mangle:LBPROV_B'],
      ['delete', 'ipv4/iptables-chain:mangle:LBPROV_OLD'],
    ]);
  });

  it('calls an ip rule update a replace: apply adds the new rule before it deletes the old one', () => {
    const changes = diffResources([ipRule(111, 'from 203.0.113.3 lookup 101')], [ipRule(111, 'from 203.0.113.2 lookup 101')]);
    expect(changes.map((c) => [c.action, c.id])).toEqual([['replace', 'ipv4/ip-rule:111']]);
  });

  it('sees a reordered chain as a change (rule order matters)', () => {
    const changes = diffResources([chain('LBPROV_A', ['-i a -j RETURN', '-i b -j RETURN'])], [chain('LBPROV_A', ['-i b -j RETURN', '-i a -j RETURN'])]);
    expect(changes).toHaveLength(1);
  });

  it('inverts into the changes that restore the current state', () => {
    const desired = [chain('LBPROV_A', ['-j RETURN'])];
    const current = [chain('LBPROV_OLD', [])];
    const undo = diffResources(desired, current).map(invertChange);
    expect(undo.map((c) => [c.action, c.id])).toEqual([
      ['delete', 'ipv4/iptables-chain:mangle:LBPROV_A'],
      ['create', 'ipv4/iptables-chain:mangle:LBPROV_OLD'],
    ]);
  });
});
