/**
 * The lab's dynamic links, for real: dnsmasq and ISC dhclient (stock dhclient-script, in the
 * gateway's own mount namespace), and socat-relayed TUN sessions standing in for PPPoE. Traffic
 * through them is routed and NATed by hand here (no lbprov), and counted at the server. Needs
 * root; with CI=true a lab that cannot be built fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  connectP2p,
  countConnections,
  createLab,
  cutUpstream,
  dropP2p,
  gatewayFileOnHost,
  LabError,
  linkAddress,
  loadLab,
  renumberDhcp,
  restoreUpstream,
  type Lab,
  type LabLink,
  type LabState,
} from '../../src/lab/index.js';
import { run } from '../../src/lab/run.js';
import { skipLab, startLab, type LabRun } from './harness.js';

const suite = (name: string): string => (skipLab ? `${name} (skipped: needs root; CI=true makes this fail instead)` : name);
/** The LAN's table in these tests: everything from lan0 leaves by the link under test. */
const LAN_TABLE = 150;

async function ipJson<T>(ns: string, args: string[]): Promise<T> {
  return JSON.parse((await run(['ip', '-n', ns, '-j', ...args])).stdout) as T;
}

async function ping(lab: Lab, device: string, target: string): Promise<boolean> {
  const gateway = lab.gateway(0);
  return (await lab.exec(gateway.ns, ['ping', '-n', '-q', '-c', '1', '-W', '1', '-I', device, target], { allowFailure: true })).code === 0;
}

/** Routes the LAN out by `link` and masquerades there, as a one-ISP router would. */
async function routeLanVia(lab: Lab, route: string): Promise<void> {
  const gateway = lab.gateway(0);
  await lab.exec(gateway.ns, ['ip', 'route', 'replace', 'default', ...route.split(' '), 'table', String(LAN_TABLE)]);
}

async function sendLanVia(lab: Lab, link: LabLink, masquerade = true): Promise<void> {
  const gateway = lab.gateway(0);
  await lab.exec(gateway.ns, ['ip', 'rule', 'add', 'pref', String(LAN_TABLE), 'iif', gateway.lanInterface, 'lookup', String(LAN_TABLE)]);
  if (masquerade) await lab.exec(gateway.ns, ['iptables', '-w', '-t', 'nat', '-A', 'POSTROUTING', '-o', link.interface, '-j', 'MASQUERADE']);
}

/** Processes still running: recorded ones (same pid and start time), and any naming the lab's folder. */
function survivors(processes: LabState['processes'], dir?: string): string[] {
  const recorded = processes.filter((started) => {
    const stat = existsSync(`/proc/${started.pid}/stat`) ? readFileSync(`/proc/${started.pid}/stat`, 'utf8') : '';
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return stat !== '' && fields[0] !== 'Z' && fields[19] === started.startTime;
  });
  const naming = readdirSync('/proc').filter((entry) => {
    if (dir === undefined || !/^\d+$/.test(entry)) return false;
    try {
      return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir);
    } catch {
      return false;
    }
  });
  return [...recorded.map((started) => `${started.role} (${started.pid})`), ...naming.map((pid) => `pid ${pid} naming ${dir}`)];
}

async function leftovers(prefix: string): Promise<string[]> {
  const namespaces = (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((line) => line.startsWith(`${prefix}-`));
  const links = (JSON.parse((await run(['ip', '-j', 'link', 'show'])).stdout) as { ifname: string }[]).filter((link) => link.ifname.startsWith(prefix));
  return [...namespaces, ...links.map((link) => link.ifname)];
}

const dhcpDefault = async (lab: Lab, link: LabLink) =>
  (await ipJson<{ gateway?: string; metric?: number }[]>(lab.gateway(0).ns, ['-4', 'route', 'show', 'table', 'main', 'default', 'dev', link.interface]))[0];

describe.skipIf(skipLab)(suite('lab with a static and a dhcp link'), () => {
  let t: LabRun;
  let link: LabLink;
  let buildMs = 0;

  beforeAll(async () => {
    const started = performance.now();
    t = await startLab({ linkKinds: ['static', 'dhcp'] });
    buildMs = performance.now() - started;
    link = t.lab.gateway(0).links[1] as LabLink;
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('has a lease bound by dhclient in the gateway, with its default route in main, before createLab resolves', async () => {
    console.log(`lab build with a dhcp link: ${buildMs.toFixed(0)} ms`);
    const gateway = t.lab.gateway(0);
    expect(link).toMatchObject({ kind: 'dhcp', interface: 'wan2', pool: 0 });
    expect(await linkAddress(t.lab, 0, 'isp2')).toBe(link.pools?.[0]?.gatewayAddress);
    expect(await dhcpDefault(t.lab, link)).toMatchObject({ gateway: link.pools?.[0]?.nextHop, metric: 102 });
    // The static link keeps main's preferred default.
    expect((await ipJson<{ dev: string; metric?: number }[]>(gateway.ns, ['-4', 'route', 'show', 'table', 'main', 'default']))[0]).toMatchObject({ dev: 'wan1' });
    // dhclient runs in the sshd's mount namespace: its lease file and resolv.conf are the gateway's own.
    const dhclient = t.lab.state.processes.find((started) => started.role === 'dhclient gw1 isp2');
    const sshd = t.lab.state.processes.find((started) => started.role === 'sshd gw1');
    expect(dhclient).toBeDefined();
    expect(await run(['readlink', `/proc/${dhclient?.pid}/ns/mnt`])).toEqual(await run(['readlink', `/proc/${sshd?.pid}/ns/mnt`]));
    expect(existsSync(gatewayFileOnHost(gateway, '/var/lib/dhcp/dhclient.wan2.leases'))).toBe(true);
    expect(existsSync('/var/lib/dhcp/dhclient.wan2.leases')).toBe(false);
    expect(await t.gw(['cat', '/etc/resolv.conf'])).toContain(`nameserver ${t.lab.state.server.address}`);
    expect(readFileSync('/etc/resolv.conf', 'utf8')).not.toContain(`nameserver ${t.lab.state.server.address}`);
  });

  it('writes gateway: dhcp for the dhcp link and leaves the static link as it was', () => {
    const inventory = parse(readFileSync(t.lab.inventoryPath, 'utf8')) as { gateways: { gw1: { links: unknown[] } } };
    expect(inventory.gateways.gw1.links).toEqual([
      { name: 'isp1', interface: 'wan1', gateway: '203.0.113.1', weight: 3, probes: ['198.51.100.33'] },
      { name: 'isp2', interface: 'wan2', gateway: 'dhcp', weight: 1, probes: ['198.51.100.35'] },
    ]);
  });

  it('carries NATed LAN traffic; without NAT the ISP drops the LAN source (strict rp_filter)', async () => {
    await routeLanVia(t.lab, `via ${link.nextHop} dev ${link.interface}`);
    await sendLanVia(t.lab, link, false);
    const unnated = await countConnections(t.lab, 0, 3, { idleTimeoutMs: 1_000 });
    expect(unnated.byLink).toEqual({ isp1: 0, isp2: 0 });
    const gateway = t.lab.gateway(0);
    await t.lab.exec(gateway.ns, ['iptables', '-w', '-t', 'nat', '-A', 'POSTROUTING', '-o', link.interface, '-j', 'MASQUERADE']);
    // The refused attempts left conntrack entries bound to no NAT; a new connection that draws one of
    // their source ports would join that entry and be dropped upstream like them.
    await t.lab.exec(gateway.ns, ['conntrack', '-D', '-p', 'tcp', '-s', gateway.lanSources[0] as string]);
    const counts = await countConnections(t.lab, 0, 50);
    expect(counts.errors).toEqual({});
    expect(counts.bySource).toEqual({ [link.gatewayAddress]: 50 });
    expect(counts.byLink).toEqual({ isp1: 0, isp2: 50 });
  });

  it('renumbers to a new address and router: the old router stops answering, hooks see it, traffic follows', async () => {
    const gateway = t.lab.gateway(0);
    const old = { address: link.gatewayAddress, router: link.nextHop };
    await t.gw(['sh', '-c', 'mkdir -p /etc/dhcp/dhclient-exit-hooks.d && printf "%s\\n" \'echo "$reason $new_ip_address $new_routers" >> /var/log/lab-dhcp-hook.log\' > /etc/dhcp/dhclient-exit-hooks.d/zz-lab-record']);

    const started = performance.now();
    const lease = await renumberDhcp(t.lab, 0, 'isp2', { pool: 'next' });
    console.log(`renumberDhcp: ${(performance.now() - started).toFixed(0)} ms`);
    expect(lease).toEqual({ address: link.pools?.[1]?.gatewayAddress, router: link.pools?.[1]?.nextHop });
    expect(lease.address).not.toBe(old.address);
    expect(lease.router).not.toBe(old.router);
    expect(await linkAddress(t.lab, 0, 'isp2')).toBe(lease.address);
    expect(await dhcpDefault(t.lab, link)).toMatchObject({ gateway: lease.router, metric: 102 });
    expect(loadLab(t.lab.stateFile).gateway(0).links[1]).toMatchObject({ gatewayAddress: lease.address, nextHop: lease.router, pool: 1 });
    // INIT-REBOOT asked for the old address and was refused before the new lease.
    expect(readFileSync(join(gateway.dir, 'dhclient.isp2.log'), 'utf8')).toMatch(new RegExp(`DHCPREQUEST for ${old.address.replaceAll('.', '\\.')}[^\\n]*\\n(.*\\n)*DHCPNAK`));
    expect(await t.gw(['cat', '/var/log/lab-dhcp-hook.log'])).toContain(`BOUND ${lease.address} ${lease.router}`);
    expect(existsSync('/var/log/lab-dhcp-hook.log')).toBe(false);

    const ispAddresses = await ipJson<{ addr_info: { local: string }[] }[]>(link.ispNs, ['-4', 'addr', 'show', 'dev', link.ispInterface]);
    expect(ispAddresses[0]?.addr_info.map((address) => address.local)).toEqual([lease.router]);
    expect(await ping(t.lab, link.interface, lease.router)).toBe(true);
    // A stale next hop, reached on-link as a table left behind would: nobody answers for it.
    await t.lab.exec(gateway.ns, ['ip', 'route', 'add', `${old.router}/32`, 'dev', link.interface]);
    expect(await ping(t.lab, link.interface, old.router)).toBe(false);
    await t.lab.exec(gateway.ns, ['ip', 'route', 'del', `${old.router}/32`, 'dev', link.interface]);

    // The kernel flushed the LAN table's route with the old address; put it back by hand.
    await routeLanVia(t.lab, `via ${lease.router} dev ${link.interface}`);
    const counts = await countConnections(t.lab, 0, 50);
    expect(counts.bySource).toEqual({ [lease.address]: 50 });
    expect(counts.byLink).toEqual({ isp1: 0, isp2: 50 });

    const back = await renumberDhcp(t.lab, 0, 'isp2');
    expect(back).toEqual({ address: old.address, router: old.router });
  });

  it('cuts and restores the dhcp link upstream', async () => {
    await routeLanVia(t.lab, `via ${link.nextHop} dev ${link.interface}`);
    await cutUpstream(t.lab, 0, 'isp2');
    expect((await countConnections(t.lab, 0, 3, { idleTimeoutMs: 1_000 })).byLink.isp2).toBe(0);
    expect(await ping(t.lab, link.interface, link.probe)).toBe(false);
    await restoreUpstream(t.lab, 0, 'isp2');
    expect((await countConnections(t.lab, 0, 20)).byLink).toEqual({ isp1: 0, isp2: 20 });
  });
});

describe.skipIf(skipLab)(suite('lab with a static and a p2p link'), () => {
  let t: LabRun;
  let link: LabLink;

  beforeAll(async () => {
    const started = performance.now();
    t = await startLab({ linkKinds: ['static', 'p2p'] });
    console.log(`lab build with a p2p link: ${(performance.now() - started).toFixed(0)} ms`);
    link = t.lab.gateway(0).links[1] as LabLink;
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('has a session up: ppp2 is point-to-point, NOARP, MTU 1492, with its local address and peer', async () => {
    const [device] = await ipJson<{ flags: string[]; mtu: number; link_type: string }[]>(t.lab.gateway(0).ns, ['link', 'show', 'dev', 'ppp2']);
    expect(device).toMatchObject({ mtu: 1492, link_type: 'none' });
    expect(device?.flags).toEqual(expect.arrayContaining(['POINTOPOINT', 'NOARP', 'UP', 'LOWER_UP']));
    const [addresses] = await ipJson<{ addr_info: { local: string; address: string }[] }[]>(t.lab.gateway(0).ns, ['-4', 'addr', 'show', 'dev', 'ppp2']);
    expect(addresses?.addr_info[0]).toMatchObject({ local: link.pools?.[0]?.gatewayAddress, address: link.pools?.[0]?.nextHop });
    expect(await ping(t.lab, 'ppp2', link.probe)).toBe(true);
    const inventory = parse(readFileSync(t.lab.inventoryPath, 'utf8')) as { gateways: { gw1: { links: unknown[] } } };
    expect(inventory.gateways.gw1.links[1]).toEqual({ name: 'isp2', interface: 'ppp2', gateway: 'none', weight: 1, probes: ['198.51.100.35'] });
  });

  it('drops and reconnects with new addresses, running the ip-down and ip-up scripts; traffic follows', async () => {
    const gateway = t.lab.gateway(0);
    const record = 'echo "$(basename "$0") $* iface=$PPP_IFACE local=$PPP_LOCAL remote=$PPP_REMOTE" >> /var/log/lab-ppp-hook.log';
    await t.gw(['sh', '-c', `for d in ip-up.d ip-down.d; do mkdir -p /etc/ppp/$d && printf '#!/bin/sh\\n%s\\n' '${record}' > /etc/ppp/$d/lab-record && chmod +x /etc/ppp/$d/lab-record; done`]);
    await routeLanVia(t.lab, 'dev ppp2');
    await sendLanVia(t.lab, link);
    const first = link.gatewayAddress;
    expect((await countConnections(t.lab, 0, 50)).bySource).toEqual({ [first]: 50 });

    const relays = t.lab.state.processes.filter((started) => started.role.startsWith('relay gw1 isp2'));
    expect(relays).toHaveLength(2);
    await dropP2p(t.lab, 0, 'isp2');
    expect(await linkAddress(t.lab, 0, 'isp2')).toBeNull();
    expect((await run(['ip', '-n', gateway.ns, 'link', 'show', 'dev', 'ppp2'], { allowFailure: true })).code).not.toBe(0);
    expect((await run(['ip', '-n', link.ispNs, 'link', 'show', 'dev', link.ispInterface], { allowFailure: true })).code).not.toBe(0);
    expect(survivors(relays)).toEqual([]);
    expect((await countConnections(t.lab, 0, 3, { idleTimeoutMs: 1_000 })).byLink.isp2).toBe(0);

    const started = performance.now();
    const session = await connectP2p(t.lab, 0, 'isp2');
    console.log(`connectP2p: ${(performance.now() - started).toFixed(0)} ms`);
    expect(session).toEqual({ address: link.pools?.[1]?.gatewayAddress, peer: link.pools?.[1]?.nextHop });
    expect(session.address).not.toBe(first);
    expect(await linkAddress(t.lab, 0, 'isp2')).toBe(session.address);
    expect(await t.gw(['cat', '/var/log/lab-ppp-hook.log'])).toBe(
      [
        `lab-record ppp2 carrier2 0 ${first} ${link.pools?.[0]?.nextHop}  iface=ppp2 local=${first} remote=${link.pools?.[0]?.nextHop}`,
        `lab-record ppp2 carrier2 0 ${session.address} ${session.peer}  iface=ppp2 local=${session.address} remote=${session.peer}`,
        '',
      ].join('\n'),
    );
    // The kernel emptied the LAN table with the old ppp2; a watcher (lbprov's, later) puts the route back.
    await routeLanVia(t.lab, 'dev ppp2');
    const counts = await countConnections(t.lab, 0, 50);
    expect(counts.bySource).toEqual({ [session.address]: 50 });
    expect(counts.byLink).toEqual({ isp1: 0, isp2: 50 });

    await dropP2p(t.lab, 0, 'isp2');
    expect(await connectP2p(t.lab, 0, 'isp2', { fresh: false })).toEqual(session);
  });

  it('cuts and restores the p2p link upstream, across a new session', async () => {
    await cutUpstream(t.lab, 0, 'isp2');
    expect(await ping(t.lab, 'ppp2', link.probe)).toBe(false);
    await dropP2p(t.lab, 0, 'isp2');
    await connectP2p(t.lab, 0, 'isp2');
    expect(await ping(t.lab, 'ppp2', link.probe)).toBe(false);
    await restoreUpstream(t.lab, 0, 'isp2');
    expect(await ping(t.lab, 'ppp2', link.probe)).toBe(true);
  });
});

describe.skipIf(skipLab)(suite('lab whose first link is p2p and starts down'), () => {
  let t: LabRun;

  beforeAll(async () => {
    t = await startLab({ linkKinds: ['p2p', 'dhcp'], p2pDown: true });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('has no ppp1 until connected; then ppp1 is the default route, as pppd defaultroute makes it', async () => {
    const [p2p, dhcp] = t.lab.gateway(0).links as [LabLink, LabLink];
    expect(await linkAddress(t.lab, 0, 'isp1')).toBeNull();
    expect(await linkAddress(t.lab, 0, 'isp2')).toBe(dhcp.gatewayAddress);
    const session = await connectP2p(t.lab, 0, 'isp1');
    expect(session.address).toBe(p2p.pools?.[0]?.gatewayAddress);
    // The lab's baseline: link 1 is the gateway's ISP, NATed.
    const counts = await countConnections(t.lab, 0, 40);
    expect(counts.byLink).toEqual({ isp1: 40, isp2: 0 });
  });
});

describe.skipIf(skipLab)(suite('lab cleanup after failures'), () => {
  it('leaves nothing behind when the first lease never comes', async () => {
    const prefix = `ld${randomBytes(3).toString('hex')}`;
    const work = mkdtempSync(join(tmpdir(), 'lbprov-e2e-'));
    const dir = join(work, 'lab');
    try {
      await expect(createLab({ prefix, dir, linkKinds: ['static', 'dhcp', 'p2p'], weights: [1, 1, 1], leaseTimeoutMs: 1 })).rejects.toThrow(LabError);
      expect(await leftovers(prefix)).toEqual([]);
      expect(survivors([], dir)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('destroy removes every namespace, veth, tun, process and the lab dir after a failed renumbering', async () => {
    const t = await startLab({ linkKinds: ['dhcp', 'p2p'] });
    const { state } = t.lab;
    try {
      await expect(renumberDhcp(t.lab, 0, 'isp1', { pool: 'next', timeoutMs: 1 })).rejects.toThrow(/no lease within 1 ms/);
      expect(state.processes.map((started) => started.role).sort()).toEqual(
        ['dhclient gw1 isp1', 'dnsmasq gw1 isp1', 'relay gw1 isp2 gateway', 'relay gw1 isp2 isp', 'sshd gw1', 'tcp server'],
      );
    } finally {
      await t.lab.destroy();
    }
    expect(await leftovers(state.prefix)).toEqual([]);
    expect(survivors(state.processes, state.dir)).toEqual([]);
    expect(existsSync(state.dir)).toBe(false);
    await t.destroy();
  });
});
