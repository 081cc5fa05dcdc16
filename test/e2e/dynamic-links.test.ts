/**
 * Issue 13 on a real lab gateway, once per firewall backend: a DHCP link (dnsmasq at the ISP, ISC
 * dhclient with the stock dhclient-script on the gateway), a point-to-point link (a socat-relayed
 * TUN session standing in for PPPoE: POINTOPOINT, NOARP, no next hop) and a static one, 3:2:1.
 * Renewals, dropped sessions and new addresses are followed on the gateway by the monitor alone
 * (no lbprov up in between), traffic is real TCP counted at the server by source address, and the
 * next plan shows no drift.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { connectP2p, countConnections, dropP2p, linkAddress, renumberDhcp } from '../../src/lab/index.js';
import { skipLab, startLab, type LabRun } from './harness.js';
import { BACKENDS } from './backends.js';

const MONITOR = { interval: 1, timeout: 1, reliability: 1, down: 3, up: 3 };
/** The bound for a link to carry its share again after a change: interval x up + 2 s. */
const REJOIN_BUDGET_MS = (MONITOR.interval * MONITOR.up + 2) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function monitorState(t: LabRun): Promise<Record<string, string>> {
  const text = (await t.lab.execOnGateway(0, ['cat', '/run/lbprov/state'], { allowFailure: true })).stdout;
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Milliseconds from `since` until the monitor's state matches `want`. */
async function timeUntil(t: LabRun, want: Record<string, string>, since: number, budgetMs: number): Promise<number> {
  for (;;) {
    const state = await monitorState(t);
    if (Object.entries(want).every(([k, v]) => state[k] === v)) return performance.now() - since;
    if (performance.now() - since > budgetMs + 5_000) throw new Error(`the monitor did not reach ${JSON.stringify(want)} within ${budgetMs + 5_000} ms: ${JSON.stringify(state)}`);
    await sleep(50);
  }
}

/** The lab writes probes and kinds; fast probing keeps the test in seconds. */
function withFastMonitor(path: string): void {
  const doc = parseDocument(readFileSync(path, 'utf8'));
  doc.setIn(['defaults', 'monitor'], MONITOR);
  writeFileSync(path, doc.toString({ lineWidth: 0 }));
}

describe.skipIf(skipLab).each(BACKENDS)('dynamic links with $name: DHCP and point-to-point links followed on the gateway', (backend) => {
  let t: LabRun;
  let mainDefaults: string;

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 2, 1], linkKinds: ['dhcp', 'p2p', 'static'], firewall: backend.name });
    withFastMonitor(t.lab.inventoryPath);
    mainDefaults = await t.gw(['ip', 'route', 'show', 'table', 'main', 'default']);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('plan shows the learned next hop and the point-to-point link; up balances 3:2:1 from their current addresses', async () => {
    const isp1 = t.lab.gateway(0).links[0]!;
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    const address = await linkAddress(t.lab, 0, 'isp1');
    expect(plan.stdout).toMatch(new RegExp(`isp1: next hop \\S+ learned from the DHCP (lease|default route) of ${isp1.interface} \\(address ${address!.replaceAll('.', '\\.')}\\)`));
    expect(plan.stdout).toMatch(/isp2: point-to-point on ppp2 \(address [\d.]+\), no next hop/);
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await t.gw(['cat', '/etc/lbprov/firewall'])).toBe(`${backend.name}\n`);
    expect(await t.gw(['test', '-f', '/etc/dhcp/dhclient-exit-hooks.d/lbprov'])).toBe('');
    const counts = await countConnections(t.lab, 0, 120);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 60, isp2: 40, isp3: 20 });
    expect(counts.bySource[address!]).toBe(60);
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });

  it('a renewal with a new address and router keeps the split, that share leaving from the new address, with no up; the next plan exits 0', async () => {
    const before = await linkAddress(t.lab, 0, 'isp1');
    const started = performance.now();
    const lease = await renumberDhcp(t.lab, 0, 'isp1');
    expect(lease.address).not.toBe(before);
    const ms = await timeUntil(t, { 'link.isp1': 'up', 'link.isp1.address': lease.address, 'link.isp1.nexthop': lease.router }, started, REJOIN_BUDGET_MS);
    // dhclient ran lbprov's exit hook: the lease is on record, and it is where the router was learned.
    expect(await t.gw(['cat', '/run/lbprov/dhcp/wan1'])).toContain(`address=${lease.address}\nrouter=${lease.router}\n`);
    expect((await monitorState(t))['link.isp1.source']).toBe('dhcp-lease');
    console.log(`dhcp renewal (${backend.name}): isp1 back in the pool from ${lease.address} via ${lease.router} ${(ms / 1000).toFixed(2)} s after the renumbering started (budget ${REJOIN_BUDGET_MS / 1000} s)`);
    expect(ms).toBeLessThanOrEqual(REJOIN_BUDGET_MS);
    const counts = await countConnections(t.lab, 0, 120);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 60, isp2: 40, isp3: 20 });
    expect(counts.bySource[lease.address]).toBe(60);
    expect(counts.bySource[before!] ?? 0).toBe(0);
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout).toBe(0);
    expect(plan.stdout).toContain(`isp1: next hop ${lease.router} learned from the DHCP lease of wan1 (address ${lease.address})`);
    // The DHCP client's own main-table routes are its business: lbprov changed none of them.
    expect(await t.gw(['sh', '-c', 'ip route show table main default | grep -v "dev wan1"; true'])).toBe(mainDefaults.split('\n').filter((l) => l && !l.includes('dev wan1')).map((l) => `${l}\n`).join(''));
  });

  it('the session drops: its traffic moves to the other links at once; it comes back with a new address and rejoins from it', async () => {
    const old = await linkAddress(t.lab, 0, 'isp2');
    let started = performance.now();
    await dropP2p(t.lab, 0, 'isp2');
    const downMs = await timeUntil(t, { 'link.isp2': 'down', 'link.isp2.ready': '0' }, started, 1_000);
    console.log(`p2p drop (${backend.name}): isp2 out of the pool ${downMs.toFixed(0)} ms after the interface went`);
    expect(downMs).toBeLessThan(1_000);
    const during = await countConnections(t.lab, 0, 120);
    expect(during.errors).toEqual({});
    expect(during.byLink).toEqual({ isp1: 90, isp2: 0, isp3: 30 });
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);

    started = performance.now();
    const session = await connectP2p(t.lab, 0, 'isp2');
    expect(session.address).not.toBe(old);
    const upMs = await timeUntil(t, { 'link.isp2': 'up', 'link.isp2.address': session.address }, started, REJOIN_BUDGET_MS);
    console.log(`p2p reconnect (${backend.name}): isp2 back in the pool from ${session.address} ${(upMs / 1000).toFixed(2)} s after the session came up (budget ${REJOIN_BUDGET_MS / 1000} s)`);
    expect(upMs).toBeLessThanOrEqual(REJOIN_BUDGET_MS);
    const after = await countConnections(t.lab, 0, 120);
    expect(after.byLink).toEqual({ isp1: 60, isp2: 40, isp3: 20 });
    expect(after.bySource[session.address]).toBe(40);
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });

  it('status shows the learned next hops and current addresses', async () => {
    const status = await t.cli(['status', '-i', t.lab.inventoryPath, '--json']);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    const links = JSON.parse(status.stdout).gateways[0].links as { name: string; address: string; nextHop: string | null; nextHopSource: string; ready: boolean }[];
    const lease = await linkAddress(t.lab, 0, 'isp1');
    expect(links.map((l) => [l.name, l.ready, l.address, l.nextHopSource])).toEqual([
      ['isp1', true, lease, expect.stringMatching(/^(dhcp-lease|main-route)$/)],
      ['isp2', true, await linkAddress(t.lab, 0, 'isp2'), 'point-to-point'],
      ['isp3', true, await linkAddress(t.lab, 0, 'isp3'), 'inventory'],
    ]);
    expect(links[1]!.nextHop).toBeNull();
    const text = await t.cli(['status', '-i', t.lab.inventoryPath]);
    expect(text.stdout).toMatch(/ppp2 [\d.]+ point-to-point/);
  });

  it('at boot with the session still down the others balance, and it joins when it appears', async () => {
    await dropP2p(t.lab, 0, 'isp2');
    // A reboot loses lbprov's live state; the files in /etc stay (see persistence.test.ts).
    await t.gw(['sh', '-c', `sh /etc/lbprov/monitor.sh stop; ${backend.forget}; for p in 100 101 102 103 111 112 113 190; do ip rule del priority $p; done; for t in 101 102 103 116; do ip route flush table $t; done; rm -f /run/lbprov/state`]);
    const restore = await t.lab.execOnGateway(0, ['sh', '/etc/lbprov/restore.sh']);
    expect(restore.stderr).toBe('');
    await timeUntil(t, { 'link.isp1': 'up', 'link.isp2': 'down', 'link.isp3': 'up', balanced: 'isp1,isp3' }, performance.now(), REJOIN_BUDGET_MS);
    const counts = await countConnections(t.lab, 0, 120);
    expect(counts.byLink).toEqual({ isp1: 90, isp2: 0, isp3: 30 });
    const started = performance.now();
    await connectP2p(t.lab, 0, 'isp2');
    await timeUntil(t, { 'link.isp2': 'up', balanced: 'isp1,isp2,isp3' }, started, REJOIN_BUDGET_MS);
    expect((await countConnections(t.lab, 0, 120)).byLink).toEqual({ isp1: 60, isp2: 40, isp3: 20 });
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });

  it('down removes lbprov and its DHCP hook; the DHCP client keeps its lease and routes', async () => {
    const down = await t.cli(['down', '-i', t.lab.inventoryPath, '--yes']);
    expect(down.code, down.stdout + down.stderr).toBe(0);
    expect(await t.gw(['sh', '-c', 'ls /etc/dhcp/dhclient-exit-hooks.d/; ip rule'])).not.toMatch(/lbprov|lookup 10[1-3]|lookup 116/);
    expect(await t.gw(['sh', '-c', 'for t in 101 102 103 116; do ip route show table $t; done'])).toBe('');
    expect(await t.gw(['ip', 'route', 'show', 'table', 'main', 'default'])).toMatch(/dev wan1/);
    expect(await backend.lbprovState(t)).toBe('');
  });
});
