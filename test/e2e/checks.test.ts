/** `lbprov check` on a real lab gateway (this kernel: everything built in, no systemd), for each firewall backend. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipLab, startLab, type LabRun } from './harness.js';

interface Check { id: string; status: string; message: string; remedy?: string }

describe.skipIf(skipLab)('check on a lab gateway with iptables', () => {
  let t: LabRun;
  const checks = async (): Promise<{ code: number | null; byId: Map<string, Check> }> => {
    const result = await t.cli(['check', '-i', t.lab.inventoryPath, '--json']);
    const parsed = JSON.parse(result.stdout) as { results: { checks: Check[] }[] };
    return { code: result.code, byId: new Map(parsed.results[0]!.checks.map((c) => [c.id, c])) };
  };

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: 'iptables' });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('finds every netfilter piece built in, sends nothing mutating and exits 0', async () => {
    const { result, commands } = await t.traced(['check', '-i', t.lab.inventoryPath]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(commands).toHaveLength(1);
    expect(commands[0]!.mutating).toBe(false);
    for (const line of ['ok    netfilter:match:statistic', 'ok    netfilter:target:MASQUERADE', 'ok    netfilter:table:nat', 'ok    tool:iptables-restore']) {
      expect(result.stdout).toContain(line);
    }
    expect(result.stdout).toMatch(/fix\s+sysctl:net\.ipv4\.conf\.wan1\.rp_filter\s+net\.ipv4\.conf\.wan1\.rp_filter is 0; the plan sets 2/);
    expect(result.stdout).toMatch(/warn\s+tool:init\s+no systemd/);
    expect(result.stdout).toMatch(/gw1: \d+ ok, 1 warn, 2 fix, 0 fail/);
  });

  it('warns about rules in the legacy backend and a link that is down (it joins when it is back); fails a next hop that is off-link', async () => {
    await t.gw(['iptables-legacy', '-t', 'filter', '-A', 'INPUT', '-s', '192.0.2.250', '-j', 'ACCEPT']);
    await t.gw(['ip', 'link', 'set', 'wan2', 'down']);
    try {
      const { code, byId } = await checks();
      expect(code).toBe(0);
      expect(byId.get('tool:iptables-backend')).toMatchObject({ status: 'warn', message: expect.stringContaining('1 rule(s) exist in the legacy backend') });
      expect(byId.get('interface:wan2')).toMatchObject({ status: 'warn', message: 'link isp2: interface wan2 is down or has no carrier; it joins the pool when it comes up' });
      expect(byId.get('nexthop:isp1')?.status).toBe('ok');
    } finally {
      await t.gw(['ip', 'link', 'set', 'wan2', 'up']);
      await t.gw(['iptables-legacy', '-t', 'filter', '-D', 'INPUT', '-s', '192.0.2.250', '-j', 'ACCEPT']);
    }
    const { readFileSync, writeFileSync } = await import('node:fs');
    const offLink = `${t.work}/off-link.yml`;
    const isp1 = t.lab.gateway(0).links[0]!;
    writeFileSync(offLink, readFileSync(t.lab.inventoryPath, 'utf8').replace(`gateway: ${isp1.nextHop}`, 'gateway: 192.0.2.254'));
    const result = await t.cli(['check', '-i', offLink, '--json']);
    expect(result.code).toBe(1);
    const nexthop = (JSON.parse(result.stdout).results[0].checks as Check[]).find((c) => c.id === 'nexthop:isp1');
    expect(nexthop).toMatchObject({ status: 'fail', message: expect.stringContaining('next hop 192.0.2.254 is not inside any prefix of wan1') });
  });

  it('failover: condition on a kernel without xtables-addons fails with what to install and the fallback', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const inventory = readFileSync(t.lab.inventoryPath, 'utf8');
    const forced = `${t.work}/condition.yml`;
    writeFileSync(forced, inventory.replace(/^(\s+)lan:/m, '$1failover: condition\n$1lan:'));
    const result = await t.cli(['check', '-i', forced, '--json']);
    expect(result.code, result.stderr).toBe(1);
    const condition = (JSON.parse(result.stdout).results[0].checks as Check[]).find((c) => c.id === 'netfilter:match:condition');
    expect(condition).toMatchObject({ status: 'fail' });
    expect(condition!.remedy).toMatch(/xtables-addons-dkms.*chain-swap/);
    expect((await checks()).code).toBe(0);
  });
});

describe.skipIf(skipLab)('check on a lab gateway with nftables, and how auto decides', () => {
  let t: LabRun;
  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1] });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('auto on a gateway without lbprov picks nftables where nft works, says why, and checks what its table needs', async () => {
    const result = await t.cli(['check', '-i', t.lab.inventoryPath]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/ok\s+firewall\s+nftables \(auto: no lbprov on this gateway yet, and nft works with the kernel's nf_tables\)/);
    for (const line of ['ok    tool:nft ', 'ok    tool:nft-kernel', 'ok    netfilter:nftables:numgen', 'ok    netfilter:nftables:ct', 'ok    netfilter:nftables:masquerade', 'ok    netfilter:nftables:nat']) {
      expect(result.stdout).toContain(line);
    }
    expect(result.stdout).not.toContain('tool:iptables');
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.stdout).toContain('firewall: nftables (auto: no lbprov on this gateway yet');
  });

  it('auto keeps the backend lbprov already uses, and an iptables-only gateway gets iptables', async () => {
    expect((await t.cli(['up', '-i', t.lab.inventoryPath, '--yes'])).code).toBe(0);
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).stdout).toContain('firewall: nftables (auto: lbprov already uses it on this gateway)');
    expect((await t.cli(['down', '-i', t.lab.inventoryPath, '--yes'])).code).toBe(0);
    // Without nft on the gateway's PATH, auto falls back to iptables.
    await t.gw(['mount', '--bind', '/bin/false', '/usr/sbin/nft']);
    try {
      const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
      expect(plan.stdout).toMatch(/firewall: iptables \(auto: no lbprov on this gateway yet; nftables cannot be used: nft cannot use the kernel's nf_tables/);
      expect(plan.stdout).toContain('ipv4/iptables-chain:mangle:LBPROV_PRE');
    } finally {
      await t.gw(['umount', '/usr/sbin/nft']);
    }
  });
});
