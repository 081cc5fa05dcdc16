/** Persistence files and the removal plan, rendered from the shipped playbook and templates. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FileResource, Resource } from '../../src/model/resources.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { renderDesiredState } from '../../src/render/desired.js';
import { removalState } from '../../src/render/persistence.js';
import { SYSCTL_ORIGINAL_PATH, SYSTEMD_UNIT_PATH, SYSTEMD_WANTS_PATH } from '../../src/model/paths.js';
import { diffResources } from '../../src/diff/diff.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);
const gw = gatewaySpec();
const sysctls = { 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.wan1.rp_filter': '1', 'net.ipv4.conf.wan2.rp_filter': '1' };
const fileOf = (rs: Resource[], path: string) => rs.find((r): r is FileResource => r.kind === 'file' && r.path === path);

describe('persistence files', () => {
  const desired = renderDesiredState(gw, playbook, templates, { ...factsFor(gw), sysctls });

  it('saves the chains with their jumps, the rules and routes, the settings and the monitor revision', () => {
    const rules = fileOf(desired, '/etc/lbprov/persist/iptables.rules')!.content;
    expect(rules).toContain('#jump PREROUTING -j LBPROV_PRE');
    expect(rules).toContain('-A LBPROV_BALANCE -m statistic --mode nth --every 4 --packet 3 -j MARK --set-xmark 0x10000000/0xf0000000');
    const batch = fileOf(desired, '/etc/lbprov/persist/ip.batch')!.content;
    // No routes and no source rules: the monitor fills the tables from what the links have at boot.
    expect(batch).not.toMatch(/^route /m);
    expect(batch).toContain('rule add priority 102 from all fwmark 0x20000000/0xf0000000 lookup 102');
    expect(batch).toContain('rule add priority 190 from all iif lo lookup 116');
    expect(batch).not.toMatch(/203\.0\.113|table 116/);
    expect(fileOf(desired, '/etc/lbprov/persist/sysctl.conf')!.content).toContain('net.ipv4.conf.wan1.rp_filter = 2');
    const monitor = desired.find((r) => r.id === 'service:monitor');
    expect(fileOf(desired, '/etc/lbprov/persist/services')!.content).toContain(`monitor ${monitor?.kind === 'service' ? monitor.revision : '?'}`);
  });

  it('saves the all-links-up balancer while the monitor has a link down', () => {
    const failedOver = renderDesiredState(gw, playbook, templates, { ...factsFor(gw, { 'link.isp1': 'down' }), sysctls });
    expect(failedOver.find((r) => r.id === 'ipv4/iptables-chain:mangle:LBPROV_BALANCE')).not.toEqual(desired.find((r) => r.id === 'ipv4/iptables-chain:mangle:LBPROV_BALANCE'));
    expect(fileOf(failedOver, '/etc/lbprov/persist/iptables.rules')).toEqual(fileOf(desired, '/etc/lbprov/persist/iptables.rules'));
  });

  it('saves the same boot files whatever the links have now: a renewed lease or a dropped session is not drift', () => {
    const facts = { ...factsFor(gw), sysctls };
    const changed = { ...facts, interfaces: facts.interfaces.filter((i) => i.name !== 'wan2').map((i) => (i.name === 'wan1' ? { ...i, ipv4: ['192.0.2.66/26'] } : i)) };
    const now = renderDesiredState(gw, playbook, templates, changed);
    expect(now.find((r) => r.id === 'ipv4/route-table:102')).toMatchObject({ routes: ['unreachable default'] });
    for (const path of ['/etc/lbprov/persist/iptables.rules', '/etc/lbprov/persist/ip.batch', '/etc/lbprov/persist/sysctl.conf', '/etc/lbprov/persist/services']) {
      expect(fileOf(now, path), path).toEqual(fileOf(desired, path));
    }
  });

  it('installs the boot unit and its drop-in only on systemd hosts', () => {
    expect(fileOf(desired, SYSTEMD_UNIT_PATH)).toBeUndefined();
    const facts = factsFor(gw);
    const systemd = renderDesiredState(gw, playbook, templates, { ...facts, sysctls, tools: { ...facts.tools, initSystem: 'systemd' } });
    expect(fileOf(systemd, SYSTEMD_UNIT_PATH)!.content).toContain('ExecStart=/bin/sh /etc/lbprov/restore.sh');
    expect(fileOf(systemd, SYSTEMD_WANTS_PATH)!.content).toContain('Wants=lbprov.service');
  });

  it('records the settings before the first up, and never rewrites the record', () => {
    expect(fileOf(desired, SYSCTL_ORIGINAL_PATH)!.content).toContain('net.ipv4.ip_forward = 0');
    const record = fileOf(desired, SYSCTL_ORIGINAL_PATH)!;
    const later = renderDesiredState(gw, playbook, templates, { ...factsFor(gw), owned: [record], sysctls: { ...sysctls, 'net.ipv4.ip_forward': '1' } });
    expect(fileOf(later, SYSCTL_ORIGINAL_PATH)).toEqual(record);
  });
});

describe('removal', () => {
  const desired = renderDesiredState(gw, playbook, templates, { ...factsFor(gw), sysctls });
  const applied = { ...factsFor(gw), owned: desired.filter((r) => r.kind !== 'module'), sysctls: { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.wan1.rp_filter': '2', 'net.ipv4.conf.wan2.rp_filter': '2' } };
  const withSysctls = { ...applied, owned: [...applied.owned.filter((r) => r.kind !== 'sysctl'), ...desired.filter((r) => r.kind === 'sysctl')] };

  it('removes everything lbprov owns and restores the recorded settings', () => {
    const { desired: restores, current } = removalState(withSysctls);
    const changes = diffResources(restores, current);
    expect(changes.filter((c) => c.action !== 'delete').map((c) => `${c.id}=${c.after?.kind === 'sysctl' ? c.after.value : ''}`).sort()).toEqual([
      'sysctl:net.ipv4.conf.wan1.rp_filter=1',
      'sysctl:net.ipv4.conf.wan2.rp_filter=1',
      'sysctl:net.ipv4.ip_forward=0',
    ]);
    expect(changes.filter((c) => c.action === 'delete').length).toBe(withSysctls.owned.filter((r) => r.kind !== 'sysctl').length);
  });

  it('has nothing left to do once lbprov is gone', () => {
    const gone = { ...factsFor(gw), owned: desired.filter((r) => r.kind === 'sysctl').map((r) => ({ ...r, value: '0' })), sysctls };
    const { desired: restores, current } = removalState(gone);
    expect(diffResources(restores, current)).toEqual([]);
  });

});
