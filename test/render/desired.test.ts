import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { factsRequestFor, renderDesiredState } from '../../src/render/desired.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';
import type { IptablesChainResource, Resource } from '../../src/model/resources.js';
import { InputError } from '../../src/errors.js';
import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);
const byId = (rs: Resource[], id: string) => rs.find((r) => r.id === id);
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'lbprov-tpl-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('renderDesiredState with the shipped balancer playbook', () => {
  it('renders the measured 3:1 rule set with marks under the mask', () => {
    const gw = gatewaySpec([3, 1]);
    const desired = renderDesiredState(gw, playbook, templates, factsFor(gw));
    const balance = byId(desired, 'ipv4/iptables-chain:mangle:LBPROV_BALANCE') as IptablesChainResource;
    expect(balance.rules).toEqual([
      '-m statistic --mode nth --every 4 --packet 0 -j MARK --set-xmark 0x10000000/0xf0000000',
      '-m statistic --mode nth --every 4 --packet 1 -j MARK --set-xmark 0x20000000/0xf0000000',
      '-m statistic --mode nth --every 4 --packet 2 -j MARK --set-xmark 0x10000000/0xf0000000',
      '-m statistic --mode nth --every 4 --packet 3 -j MARK --set-xmark 0x10000000/0xf0000000',
    ]);
    const pre = byId(desired, 'ipv4/iptables-chain:mangle:LBPROV_PRE') as IptablesChainResource;
    expect(pre.rules[0]).toBe('-j CONNMARK --restore-mark --nfmask 0xf0000000 --ctmask 0xf0000000');
    expect(pre.rules.at(-1)).toBe('-j CONNMARK --save-mark --nfmask 0xf0000000 --ctmask 0xf0000000');
    expect(pre.rules).toContain('-i wan2 -m conntrack --ctstate NEW -j MARK --set-xmark 0x20000000/0xf0000000');
    expect(desired.filter((r) => r.kind === 'iptables-jump').map((r) => r.id).sort()).toEqual([
      'ipv4/iptables-jump:mangle:OUTPUT:LBPROV_OUT',
      'ipv4/iptables-jump:mangle:PREROUTING:LBPROV_PRE',
      'ipv4/iptables-jump:nat:POSTROUTING:LBPROV_NAT',
    ]);
    expect(desired.filter((r) => r.kind === 'ip-rule').map((r) => `${(r as { priority: number }).priority}`)).toEqual(['100', '101', '102', '111', '112', '190']);
    expect(byId(desired, 'ipv4/ip-rule:190')).toMatchObject({ selector: 'from all iif lo lookup 116' });
    expect(byId(desired, 'ipv4/route-table:116')).toMatchObject({ routes: ['default via 203.0.113.1 dev wan1'] });
    expect(byId(desired, 'ipv4/ip-rule:111')).toMatchObject({ selector: 'from 203.0.113.2 lookup 101' });
    expect(byId(desired, 'ipv4/route-table:102')).toMatchObject({ routes: ['default via 203.0.113.9 dev wan2'] });
    expect(byId(desired, 'sysctl:net.ipv4.conf.wan1.rp_filter')).toMatchObject({ value: '2' });
    expect(byId(desired, 'file:/etc/iproute2/rt_tables.d/lbprov.conf')).toMatchObject({ content: expect.stringContaining('101 lbprov_isp1') });
    expect(byId(desired, 'file:/etc/lbprov/manifest')).toMatchObject({ content: expect.stringContaining('/etc/iproute2/rt_tables.d/lbprov.conf') });
    expect(byId(desired, 'file:/etc/lbprov/firewall')).toMatchObject({ content: 'iptables\n' });
  });

  it('leaves a link the monitor reports down out of the pool, keeping the others in ratio', () => {
    const gw = gatewaySpec([5, 2, 1]);
    const desired = renderDesiredState(gw, playbook, templates, factsFor(gw, { 'link.isp1': 'down' }));
    const balance = byId(desired, 'ipv4/iptables-chain:mangle:LBPROV_BALANCE') as IptablesChainResource;
    expect(balance.rules).toHaveLength(3);
    expect(balance.rules.filter((r) => r.endsWith('0x20000000/0xf0000000'))).toHaveLength(2);
    expect(balance.rules.filter((r) => r.endsWith('0x30000000/0xf0000000'))).toHaveLength(1);
  });

  it('uses a plain MARK when a single link is left', () => {
    const gw = gatewaySpec([3, 1]);
    const desired = renderDesiredState(gw, playbook, templates, factsFor(gw, { 'link.isp1': 'down' }));
    expect((byId(desired, 'ipv4/iptables-chain:mangle:LBPROV_BALANCE') as IptablesChainResource).rules).toEqual(['-j MARK --set-xmark 0x20000000/0xf0000000']);
  });

  it('asks the facts script for exactly the sysctls and files the playbook manages', () => {
    const request = factsRequestFor(gatewaySpec(), playbook, templates);
    expect(request.sysctlKeys).toEqual(['net.ipv4.ip_forward', 'net.ipv4.conf.wan1.rp_filter', 'net.ipv4.conf.wan2.rp_filter']);
    expect(request.filePaths).toEqual([
      '/etc/lbprov/firewall',
      '/etc/iproute2/rt_tables.d/lbprov.conf',
      '/etc/lbprov/monitor.sh',
      '/etc/lbprov/monitor.conf',
      '/etc/lbprov/balance.variants',
      '/etc/systemd/system/lbprov-monitor.service',
      '/etc/lbprov/restore.sh',
    ]);
    expect(request.services).toEqual(['monitor']);
    // nftables first: auto prefers it where it works.
    expect(request.firewallCandidates).toEqual(['nftables', 'iptables']);
    // The dhclient hook only where a link learns its next hop by DHCP.
    const dhcp = gatewaySpec();
    dhcp.links[0]!.nextHop = { kind: 'dhcp' };
    expect(factsRequestFor(dhcp, playbook, templates).filePaths).toContain('/etc/dhcp/dhclient-exit-hooks.d/lbprov');
  });

  it('passes numbers to templates as strings (Handlebars 4.7 adds adjacent numbers)', () => {
    const dir = tempDir();
    cpSync(playbook.templatesDir, dir, { recursive: true });
    writeFileSync(join(dir, 'x.hbs'), '{{#each links}}{{index}}{{weight}}\n{{/each}}');
    const set = loadTemplateSet(dir);
    const gw = gatewaySpec([3, 1]);
    const pb = { ...playbook, templatesDir: dir, resources: [{ type: 'file' as const, path: '/etc/lbprov/x', mode: '0644', template: 'x.hbs' }] };
    const desired = renderDesiredState(gw, pb, set, factsFor(gw));
    expect(byId(desired, 'file:/etc/lbprov/x')).toMatchObject({ content: '13\n21\n' });
  });

  it('names the template, line and variable when a template uses a missing variable', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.hbs'), 'ok\n{{nosuch}}\n');
    const set = loadTemplateSet(dir);
    const gw = gatewaySpec();
    const pb = { ...playbook, templatesDir: dir, resources: [{ type: 'file' as const, path: '/etc/lbprov/x', mode: '0644', template: 'bad.hbs' }] };
    expect(() => renderDesiredState(gw, pb, set, factsFor(gw))).toThrow(InputError);
    expect(() => renderDesiredState(gw, pb, set, factsFor(gw))).toThrow(/bad\.hbs:2: nosuch/);
  });

  it('refuses a template that writes into a foreign chain', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'evil.hbs'), '*nat\n-A POSTROUTING -j ACCEPT\nCOMMIT\n');
    const set = loadTemplateSet(dir);
    const gw = gatewaySpec();
    const pb = { ...playbook, templatesDir: dir, resources: [{ type: 'firewall' as const, backend: 'iptables' as const, table: 'nat', template: 'evil.hbs' }] };
    expect(() => renderDesiredState(gw, pb, set, factsFor(gw))).toThrow(/may only jump to an lbprov chain/);
  });
});
