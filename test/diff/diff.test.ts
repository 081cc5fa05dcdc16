import { describe, expect, it } from 'vitest';
import { diffResources, invertChanges } from '../../src/diff/diff.js';
import type { Resource } from '../../src/model/resources.js';

const chain = (name: string, rules: string[]): Resource => ({ kind: 'chain', id: `chain:mangle:${name}`, family: 'ipv4', table: 'mangle', chain: name, rules });
const sysctl = (key: string, value: string): Resource => ({ kind: 'sysctl', id: `sysctl:${key}`, key, value });

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
      ['create', 'chain:mangle:LBPROV_A'],
      ['update', 'chain:mangle:LBPROV_B'],
      ['delete', 'chain:mangle:LBPROV_OLD'],
    ]);
  });

  it('sees a reordered chain as a change (rule order matters)', () => {
    const changes = diffResources([chain('LBPROV_A', ['-i a -j RETURN', '-i b -j RETURN'])], [chain('LBPROV_A', ['-i b -j RETURN', '-i a -j RETURN'])]);
    expect(changes).toHaveLength(1);
  });

  it('inverts into the changes that restore the current state', () => {
    const desired = [chain('LBPROV_A', ['-j RETURN'])];
    const current = [chain('LBPROV_OLD', [])];
    const undo = invertChanges(diffResources(desired, current));
    expect(undo.map((c) => [c.action, c.id])).toEqual([
      ['delete', 'chain:mangle:LBPROV_A'],
      ['create', 'chain:mangle:LBPROV_OLD'],
    ]);
  });
});
