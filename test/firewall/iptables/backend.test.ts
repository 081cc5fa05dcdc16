import { describe, expect, it } from 'vitest';
import { iptablesBackend, iptablesPayload } from '../../../src/firewall/iptables/index.js';
import { backendOfKind } from '../../../src/firewall/index.js';
import { diffResources } from '../../../src/diff/diff.js';
import { changesOfKind } from '../../../src/model/changes.js';
import type { ResourceChange } from '../../../src/model/changes.js';
import { InputError } from '../../../src/errors.js';
import { stdinPayloads } from '../../helpers/stdin-payloads.js';
import { chain, jump } from '../../helpers/resources.js';

const iptablesOnly = (changes: ResourceChange[]) => [...changesOfKind(changes, 'iptables-chain'), ...changesOfKind(changes, 'iptables-jump')];

describe('iptablesPayload', () => {
  it('re-declares only changed chains and never a built-in one', () => {
    const changes = diffResources([chain('LBPROV_A', ['-j RETURN']), jump('PREROUTING', 'LBPROV_A')], []);
    const payload = iptablesPayload('mangle', iptablesOnly(changes));
    expect(payload).toBe(['*mangle', ':LBPROV_A - [0:0]', '-A LBPROV_A -j RETURN', '-I PREROUTING 1 -j LBPROV_A', 'COMMIT', ''].join('\n'));
  });

  it('removes jumps, then empties every removed chain before deleting any (one may jump to another)', () => {
    // iptables-save order: LBPROV_BALANCE comes before LBPROV_PRE, which jumps to it.
    const current = [chain('LBPROV_BALANCE', ['-j MARK --set-xmark 0x1/0xff']), chain('LBPROV_PRE', ['-j LBPROV_BALANCE']), jump('PREROUTING', 'LBPROV_PRE')];
    const lines = iptablesPayload('mangle', iptablesOnly(diffResources([], current))).split('\n');
    expect(lines).toEqual(['*mangle', '-D PREROUTING -j LBPROV_PRE', '-F LBPROV_BALANCE', '-F LBPROV_PRE', '-X LBPROV_BALANCE', '-X LBPROV_PRE', 'COMMIT', '']);
  });
});

describe('iptablesBackend', () => {
  it('owns chains and jumps, and nothing else', () => {
    expect(backendOfKind('iptables-chain')).toBe(iptablesBackend);
    expect(backendOfKind('iptables-jump')).toBe(iptablesBackend);
    expect(backendOfKind('ip-rule')).toBeUndefined();
  });

  it('reads a template fragment into canonical resources', () => {
    const text = ['*nat', ':LBPROV_NAT - [0:0]', '-A POSTROUTING -j LBPROV_NAT', '-A LBPROV_NAT -o wan1 -j MASQUERADE', 'COMMIT'].join('\n');
    expect(iptablesBackend.resourcesFromTemplate({ table: 'nat', text, family: 'ipv4', at: (n) => `t:${n}` })).toEqual([
      { kind: 'iptables-chain', id: 'ipv4/iptables-chain:nat:LBPROV_NAT', family: 'ipv4', table: 'nat', chain: 'LBPROV_NAT', rules: ['-o wan1 -j MASQUERADE'] },
      { kind: 'iptables-jump', id: 'ipv4/iptables-jump:nat:POSTROUTING:LBPROV_NAT', family: 'ipv4', table: 'nat', chain: 'POSTROUTING', rule: '-j LBPROV_NAT' },
    ]);
    expect(() => iptablesBackend.resourcesFromTemplate({ table: 'filter', text, family: 'ipv4', at: (n) => `t:${n}` })).toThrow(InputError);
  });

  it('makes one atomic step per table whose undo restores the table', () => {
    const current = [chain('LBPROV_A', ['-j RETURN'])];
    const changes = diffResources([chain('LBPROV_A', ['-j ACCEPT']), jump('PREROUTING', 'LBPROV_A')], current);
    const steps = iptablesBackend.applySteps(changes);
    expect(steps).toHaveLength(1);
    const decode = (cmd: string) => stdinPayloads(cmd)[0]!.text;
    expect(decode(steps[0]!.command)).toContain('-A LBPROV_A -j ACCEPT');
    expect(decode(steps[0]!.undo)).toBe(['*mangle', ':LBPROV_A - [0:0]', '-A LBPROV_A -j RETURN', '-D PREROUTING -j LBPROV_A', 'COMMIT', ''].join('\n'));
  });
});
