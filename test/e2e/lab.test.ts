/**
 * The lab itself, for real: namespaces, veths, OpenSSH's sshd and client, TCP through the ISPs.
 * Needs root. Outside CI a non-root run skips with the reason in the suite name; with CI=true it
 * fails instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  countConnections,
  createLab,
  cutUpstream,
  gatewayFileOnHost,
  labDown,
  restoreUpstream,
  serverCounts,
  startLongConnection,
  type Lab,
  type LabGateway,
} from '../../src/lab/index.js';
import { run } from '../../src/lab/run.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI !== 'true';
const suite = skip ? 'lab (skipped: needs root for ip netns and sshd; CI=true makes this fail instead)' : 'lab';

function ssh(lab: Lab, gateway: LabGateway, command: string, knownHosts = lab.state.ssh.knownHosts) {
  return run(
    [
      'ssh', '-F', '/dev/null', '-i', lab.state.ssh.identityFile,
      '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=5',
      `root@${gateway.mgmtAddress}`, command,
    ],
    { allowFailure: true, timeoutMs: 20_000 },
  );
}

async function pingFrom(lab: Lab, ns: string, device: string, target: string): Promise<boolean> {
  const result = await lab.exec(ns, ['ping', '-n', '-q', '-c', '1', '-W', '1', '-I', device, target], { allowFailure: true });
  return result.code === 0;
}

/** The rule set kernel-facts.md measured (3:1 over two links), written by hand into the gateway. */
async function installReferenceBalancer(lab: Lab, gateway: LabGateway): Promise<void> {
  const [link1, link2] = gateway.links;
  if (link1 === undefined || link2 === undefined) throw new Error('two links expected');
  const ipBatch = [
    'rule add pref 90 lookup main suppress_prefixlength 0',
    'rule add pref 101 fwmark 0x1/0xff lookup 101',
    'rule add pref 102 fwmark 0x2/0xff lookup 102',
    `rule add pref 111 from ${link1.gatewayAddress} lookup 101`,
    `rule add pref 112 from ${link2.gatewayAddress} lookup 102`,
    `route add default via ${link1.nextHop} dev ${link1.interface} table 101`,
    `route add default via ${link2.nextHop} dev ${link2.interface} table 102`,
  ];
  const rules = [
    '*mangle',
    ':LBPROV_PRE - [0:0]',
    ':LBPROV_BALANCE - [0:0]',
    '-A PREROUTING -j LBPROV_PRE',
    '-A LBPROV_PRE -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff',
    '-A LBPROV_PRE -m mark ! --mark 0x0/0xff -j RETURN',
    `-A LBPROV_PRE -i ${link1.interface} -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xff`,
    `-A LBPROV_PRE -i ${link2.interface} -m conntrack --ctstate NEW -j MARK --set-xmark 0x2/0xff`,
    `-A LBPROV_PRE -i ${gateway.lanInterface} -m conntrack --ctstate NEW -j LBPROV_BALANCE`,
    '-A LBPROV_PRE -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff',
    ...[1, 2, 1, 1].map((mark, slot) => `-A LBPROV_BALANCE -m statistic --mode nth --every 4 --packet ${slot} -j MARK --set-xmark 0x${mark}/0xff`),
    'COMMIT',
    '*nat',
    ':LBPROV_NAT - [0:0]',
    '-A POSTROUTING -j LBPROV_NAT',
    `-A LBPROV_NAT -o ${link1.interface} -j MASQUERADE`,
    `-A LBPROV_NAT -o ${link2.interface} -j MASQUERADE`,
    'COMMIT',
  ];
  await lab.exec(gateway.ns, ['sysctl', '-qw', `net.ipv4.conf.${link1.interface}.rp_filter=2`, `net.ipv4.conf.${link2.interface}.rp_filter=2`]);
  await lab.exec(gateway.ns, ['ip', '-batch', '-'], { input: `${ipBatch.join('\n')}\n` });
  await lab.exec(gateway.ns, ['iptables-restore', '-w', '--noflush'], { input: `${rules.join('\n')}\n` });
}

describe.skipIf(skip)(suite, () => {
  let lab: Lab;
  let gw: LabGateway;

  beforeAll(async () => {
    lab = await createLab();
    gw = lab.gateway('gw1');
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('runs a real sshd that OpenSSH reaches with the lab key and a strictly checked host key', async () => {
    const ok = await ssh(lab, gw, 'true');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    // The same with no known host key must fail: the host key is really being checked.
    const emptyKnownHosts = `${lab.dir}/empty_known_hosts`;
    writeFileSync(emptyKnownHosts, '');
    expect((await ssh(lab, gw, 'true', emptyKnownHosts)).code).toBe(255);
  });

  it('writes an inventory in the contract shape that points at this lab', () => {
    const inventory = parse(readFileSync(lab.inventoryPath, 'utf8')) as {
      ssh: { identity_file: string; known_hosts: string };
      gateways: Record<string, { host: string; links: { gateway: string; probes: string[] }[] }>;
    };
    expect(inventory.ssh.identity_file).toBe(lab.state.ssh.identityFile);
    expect(existsSync(inventory.ssh.known_hosts)).toBe(true);
    expect(inventory.gateways.gw1?.host).toBe(gw.mgmtAddress);
    expect(inventory.gateways.gw1?.links.map((link) => link.gateway)).toEqual(gw.links.map((link) => link.nextHop));
  });

  it('keeps files written over SSH in the gateway, off the host', async () => {
    const marker = `written-by-${lab.state.prefix}`;
    const written = await ssh(lab, gw, `mkdir -p /etc/lbprov /var/lib/lbprov && echo ${marker} > /etc/lbprov/lab-test && echo ${marker} > /var/lib/lbprov/lab-test`);
    expect(written.code).toBe(0);
    expect(existsSync('/etc/lbprov/lab-test')).toBe(false);
    expect(existsSync('/var/lib/lbprov/lab-test')).toBe(false);
    expect((await lab.execOnGateway(gw.name, ['cat', '/etc/lbprov/lab-test'])).stdout.trim()).toBe(marker);
    expect(readFileSync(gatewayFileOnHost(gw, '/var/lib/lbprov/lab-test'), 'utf8').trim()).toBe(marker);
  });

  it('without balancing, sends every LAN connection out through ISP 1 (the main default route)', async () => {
    const before = (await serverCounts(lab))[gw.links[0]!.gatewayAddress] ?? 0;
    const counts = await countConnections(lab, gw.name, 100);
    expect(counts.errors).toEqual({});
    expect(counts.bySource).toEqual({ [gw.links[0]!.gatewayAddress]: 100 });
    expect(counts.byLink).toEqual({ isp1: 100, isp2: 0 });
    expect((await serverCounts(lab))[gw.links[0]!.gatewayAddress]).toBe(before + 100);
  });

  it('makes a probe fail when ISP 1 loses its upstream while wan1 stays up, and recover after', async () => {
    const [link1] = gw.links;
    const long = await startLongConnection(lab, gw.name);
    try {
      expect(long.link).toBe('isp1');
      expect(await long.check()).toBe(true);
      expect(await pingFrom(lab, gw.ns, link1!.interface, link1!.probe)).toBe(true);

      await cutUpstream(lab, gw.name, 'isp1');
      expect(await pingFrom(lab, gw.ns, link1!.interface, link1!.probe)).toBe(false);
      expect(await pingFrom(lab, gw.ns, link1!.interface, link1!.nextHop)).toBe(true);
      const wan1 = JSON.parse((await lab.exec(gw.ns, ['ip', '-json', 'link', 'show', link1!.interface])).stdout) as { operstate: string }[];
      expect(wan1[0]?.operstate).toBe('UP');
      expect(await long.check(500)).toBe(false);

      await restoreUpstream(lab, gw.name, 'isp1');
      expect(await pingFrom(lab, gw.ns, link1!.interface, link1!.probe)).toBe(true);
      expect(await long.check(5_000)).toBe(true);
    } finally {
      await restoreUpstream(lab, gw.name, 'isp1');
      await long.close();
    }
  });

  it('splits 300/100 by source address once the reference 3:1 balancer is in place', async () => {
    await installReferenceBalancer(lab, gw);
    const counts = await countConnections(lab, gw.name, 400);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 300, isp2: 100 });
    expect(counts.unmatched).toBe(0);
  });

  it('builds a second, 3-gateway lab beside the first without collisions', async () => {
    const big = await createLab({ gateways: 3, weights: [5, 2, 1], lanClients: [2] });
    try {
      const ours = new Set(lab.gateways.flatMap((gateway) => [gateway.mgmtAddress, gateway.rootAddress]));
      expect(big.gateways.some((gateway) => ours.has(gateway.mgmtAddress) || ours.has(gateway.rootAddress))).toBe(false);
      const results = await Promise.all([gw, ...big.gateways].map((gateway, index) => ssh(index === 0 ? lab : big, gateway, 'cat /proc/sys/net/ipv4/ip_forward')));
      expect(results.map((result) => result.stdout.trim())).toEqual(['1', '1', '1', '1']);

      const gw3 = big.gateway('gw3');
      const counts = await countConnections(big, 'gw3', 50);
      expect(counts.bySource).toEqual({ [gw3.links[0]!.gatewayAddress]: 50 });
      expect(gw3.links[0]!.gatewayAddress).not.toBe(big.gateway('gw1').links[0]!.gatewayAddress);
      await expect(countConnections(big, 'gw1', 1)).rejects.toThrow(/no LAN client/);
    } finally {
      await big.destroy();
    }
  });

  it('removes every namespace, root interface, process, lock and file it made, from state.json alone, twice', async () => {
    const { state } = lab;
    expect(state.processes.map((started) => started.role).sort()).toEqual(['sshd gw1', 'tcp server']);
    expect(await labDown(state.stateFile)).toBe(true);
    expect(await labDown(state.stateFile)).toBe(false);
    await lab.destroy();

    const namespaces = (await run(['ip', 'netns', 'list'])).stdout;
    expect(namespaces.split('\n').filter((line) => line.startsWith(`${state.prefix}-`))).toEqual([]);
    const links = JSON.parse((await run(['ip', '-json', 'link', 'show'])).stdout) as { ifname: string }[];
    expect(links.filter((link) => link.ifname.startsWith(state.prefix))).toEqual([]);
    const running = state.processes.filter((started) => {
      const stat = existsSync(`/proc/${started.pid}/stat`) ? readFileSync(`/proc/${started.pid}/stat`, 'utf8') : '';
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return stat !== '' && fields[0] !== 'Z' && fields[19] === started.startTime;
    });
    expect(running).toEqual([]);
    expect(state.locks.length).toBe(2);
    // Another lab may take a freed slot at once: only our ownership must be gone.
    const stillOurs = state.locks.filter((lock) => {
      const owner = existsSync(`${lock}/owner.json`) ? readFileSync(`${lock}/owner.json`, 'utf8') : '{}';
      return (JSON.parse(owner) as { stateFile?: string }).stateFile === state.stateFile;
    });
    expect(stillOurs).toEqual([]);
    expect(existsSync(state.dir)).toBe(false);
    expect(existsSync(state.inventoryPath)).toBe(false);
  });
});
