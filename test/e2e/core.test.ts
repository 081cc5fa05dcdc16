/**
 * Plan and up over real SSH against a namespace gateway, once per firewall backend (real iptables,
 * real nft), then real TCP connections counted at the server. Foreign rules of both kinds sit on
 * the gateway: Docker-like iptables chains (iptables-nft tables, as nft sees them) and a
 * firewalld-like native nft table whose forward chain drops what it does not allow, blocklist
 * chains in filter and in mangle, and routes in the main table and in a table of a VPN's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countConnections } from '../../src/lab/index.js';
import { CLI, runOnTerminal, skipLab, startLab, type LabRun } from './harness.js';
import { BACKENDS, FOREIGN_NFT, foreignForwardPackets } from './backends.js';

const FOREIGN_MANGLE = [
  '*mangle',
  ':FOREIGN_SEEN - [0:0]',
  '-A PREROUTING -i lan0 -j MARK --set-xmark 0x100/0x100',
  '-A POSTROUTING -m mark --mark 0x100/0x100 -j FOREIGN_SEEN',
  'COMMIT',
].join('\n');
const FOREIGN_NAT = [
  '*nat',
  ':DOCKER - [0:0]',
  '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
  '-A POSTROUTING -s 192.0.2.128/25 ! -o docker0 -j MASQUERADE',
  '-A DOCKER -i docker0 -j RETURN',
  'COMMIT',
].join('\n');
/** fail2ban/blocklist-style chains lbprov reads past: one in filter, one in mangle beside lbprov's chains. */
const blocklist = (table: string, chain: string, from: string) => [
  `*${table}`,
  `:${chain} - [0:0]`,
  ...Array.from({ length: 2000 }, (_, i) => `-A ${chain} -s 198.18.${i >> 8}.${i & 255}/32 -j DROP`),
  `-A ${from} -j ${chain}`,
  'COMMIT',
  '',
].join('\n');
/** A VPN-like routing table lbprov does not own, and routes of the main table it must leave alone. */
const FOREIGN_ROUTES = Array.from({ length: 500 }, (_, i) => `route add 198.19.${i >> 8}.${i & 255}/32 via 198.51.100.2${i % 2 ? ' table 4242' : ''}\n`).join('');
describe.skipIf(skipLab).each(BACKENDS)('core with $name: plan and up on a 3:1 lab gateway', (backend) => {
  let t: LabRun;
  let before: { firewall: string; rules: string; main: string; vpn: string };
  const state = async () => ({
    firewall: await backend.fullState(t),
    rules: await t.gw(['ip', 'rule', 'show']),
    main: await t.gw(['ip', 'route', 'show', 'table', 'main']),
    vpn: await t.gw(['ip', 'route', 'show', 'table', '4242']),
  });

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: backend.name });
    await t.lab.execOnGateway(0, ['iptables-restore', '--noflush'], { input: FOREIGN_MANGLE + '\n' });
    await t.lab.execOnGateway(0, ['iptables-restore', '--noflush'], { input: FOREIGN_NAT + '\n' });
    await t.lab.execOnGateway(0, ['nft', '-f', '-'], { input: FOREIGN_NFT });
    await t.lab.execOnGateway(0, ['iptables-restore', '--noflush'], { input: blocklist('filter', 'f2b-blocklist', 'INPUT') + blocklist('mangle', 'blocklist', 'PREROUTING') });
    await t.lab.execOnGateway(0, ['ip', '-batch', '-'], { input: FOREIGN_ROUTES });
    await t.lab.execOnGateway(0, ['ip', 'rule', 'add', 'priority', '5000', 'fwmark', '0x100/0x100', 'lookup', 'main']);
    before = await state();
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('plan lists every resource, exits 2 and touches nothing', async () => {
    const { result, commands } = await t.traced(['plan', '-i', t.lab.inventoryPath]);
    expect(result.code, result.stderr).toBe(2);
    for (const id of [backend.ids.pre, backend.ids.balance, backend.ids.nat, 'ipv4/route-table:101', 'ipv4/route-table:102', 'ipv4/ip-rule:100', 'ipv4/ip-rule:111', 'sysctl:net.ipv4.conf.wan1.rp_filter', 'file:/etc/lbprov/firewall']) {
      expect(result.stdout).toContain(id);
    }
    expect(result.stdout).toContain(`firewall: ${backend.name} (set in the inventory`);
    expect(result.stdout).toMatch(/gw1: \d+ to add, \d+ to change, 0 to remove/);
    expect(commands).toHaveLength(1);
    expect(commands[0]!.mutating).toBe(false);
    expect(await state()).toEqual(before);
  });

  it('plan --json is the same plan as data', async () => {
    const result = await t.cli(['plan', '-i', t.lab.inventoryPath, '--json']);
    expect(result.code).toBe(2);
    const plan = JSON.parse(result.stdout);
    expect(plan.hosts[0].gateway).toBe('gw1');
    expect(plan.hosts[0].changes.map((c: { id: string }) => c.id)).toContain(backend.ids.balance);
  });

  it('up without a terminal and without --yes refuses and changes nothing', async () => {
    const result = await t.cli(['up', '-i', t.lab.inventoryPath]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--yes/);
    expect(await state()).toEqual(before);
  });

  it('up on a terminal shows the plan and asks; answering no changes nothing', async () => {
    // script(1) gives the CLI a real pseudo-terminal; "n" is typed at the prompt.
    const answered = await runOnTerminal(`${process.execPath} ${CLI} up -i ${t.lab.inventoryPath}`, '[y/N]', 'n\r');
    expect(answered.out).toContain(backend.ids.balance);
    expect(answered.out).toMatch(/Apply these changes to 1 gateway\(s\)\? \[y\/N\]/);
    expect(answered.out).toMatch(/gw1\s+not-started/);
    expect(answered.code).toBe(1);
    expect(await state()).toEqual(before);
  });

  it('up converges (facts, one apply round trip, then confirm over a new connection) and 400 connections split 300/100', async () => {
    const { result, commands } = await t.traced(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    // facts+lock, the apply transaction (which reads the state back); then the confirm on a fresh connection.
    expect(commands.map((c) => c.mutating)).toEqual([false, true, true]);
    // The confirm ended the revert timer and its sleep: gone, or dead and not yet reaped by init.
    const timerGroupId = (await t.gw(['sh', '-c', 'cat "$(ls -1dt /var/lib/lbprov/txn/*/ | head -n 1)timer.pgid"'])).trim();
    expect(timerGroupId).toMatch(/^\d+$/);
    const timerGroup = await t.gw(['sh', '-c', `ps -o stat= -g ${timerGroupId} || true`]);
    expect(timerGroup.split('\n').filter((stat) => stat.trim() !== '' && !stat.startsWith('Z'))).toEqual([]);
    const counts = await countConnections(t.lab, 0, 400);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 300, isp2: 100 });
  });

  it('the next plan exits 0 and a second up sends no mutating command', async () => {
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout).toBe(0);
    const { result, commands } = await t.traced(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(result.code).toBe(0);
    expect(commands).toHaveLength(1);
    expect(commands.every((c) => !c.mutating)).toBe(true);
  });

  it('leaves foreign rules, chains and routes byte-for-byte as they were, and they still work', async () => {
    const after = await state();
    const foreign = await backend.foreignState(t);
    expect(foreign).toEqual(before.firewall);
    expect(foreign).toContain('DOCKER');
    expect(await backend.lbprovState(t)).not.toBe('');
    expect(after.rules.split('\n').filter((l) => /^5000:/.test(l))).toEqual(before.rules.split('\n').filter((l) => /^5000:/.test(l)));
    expect(after.main).toEqual(before.main);
    expect(after.vpn).toEqual(before.vpn);
    expect(foreign).toContain('198.18.7.207');
    // The foreign 0x100 mark outside lbprov's mask survives lbprov's restore/save of its own bits.
    const seen = async () => Number(/^\s*(\d+)/m.exec((await t.gw(['iptables', '-t', 'mangle', '-L', 'POSTROUTING', '-v', '-x', '-n'])).split('\n').find((l) => l.includes('FOREIGN_SEEN')) ?? '')?.[1] ?? NaN);
    const n0 = await seen();
    const counts = await countConnections(t.lab, 0, 40);
    expect(counts.byLink).toEqual({ isp1: 30, isp2: 10 });
    expect(await seen()).toBeGreaterThan(n0);
    // The foreign forward chain saw the LAN's connections and let them through.
    expect(await foreignForwardPackets(t)).toBeGreaterThan(0);
  });

  it('finds a hand-deleted rule as exactly that change and repairs exactly that', async () => {
    const chain = await backend.deleteInboundRule(t);
    await t.gw(['ip', 'rule', 'del', 'priority', '112']);
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath, '--json']);
    expect(plan.code).toBe(2);
    const changes = JSON.parse(plan.stdout).hosts[0].changes.map((c: { action: string; id: string }) => `${c.action} ${c.id}`);
    expect(changes.sort()).toEqual(['create ipv4/ip-rule:112', `update ${chain}`]);
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const replan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(replan.code, replan.stdout + replan.stderr).toBe(0);
    expect(await t.gw(['ip', 'rule', 'show', 'priority', '112'])).toContain('from 203.0.113.10');
  });
});

describe.skipIf(skipLab).each(BACKENDS)('core with $name: three links weighted 5:2:1', (backend) => {
  let t: LabRun;
  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [5, 2, 1], firewall: backend.name });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('splits 800 new connections exactly 500/200/100', async () => {
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const counts = await countConnections(t.lab, 0, 800);
    expect(counts.byLink).toEqual({ isp1: 500, isp2: 200, isp3: 100 });
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });
});
