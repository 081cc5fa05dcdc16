/**
 * `lbprov down` removes everything lbprov put on a gateway, restores the kernel settings it
 * changed, and leaves foreign rules exactly as they were, once per firewall backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipLab, startLab, type LabRun } from './harness.js';
import { BACKENDS, FOREIGN_NFT } from './backends.js';

const FOREIGN_MANGLE = ['*mangle', ':FOREIGN_SEEN - [0:0]', '-A PREROUTING -i lan0 -j MARK --set-xmark 0x100/0x100', '-A POSTROUTING -m mark --mark 0x100/0x100 -j FOREIGN_SEEN', 'COMMIT', ''].join('\n');
const FOREIGN_NAT = ['*nat', ':DOCKER - [0:0]', '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER', '-A POSTROUTING -s 192.0.2.128/25 ! -o docker0 -j MASQUERADE', '-A DOCKER -i docker0 -j RETURN', 'COMMIT', ''].join('\n');

/** Everything on the gateway lbprov could touch besides the packet filter (backend.fullState). */
const SNAPSHOT = `
nft -s list table inet filter
ip rule show; ip -4 route show table all
for k in ip_forward conf/wan1/rp_filter conf/wan2/rp_filter; do echo "$k=$(cat /proc/sys/net/ipv4/$k)"; done
ls -A /etc/lbprov /etc/modules-load.d /etc/iproute2/rt_tables.d /etc/systemd/system 2>&1
true
`;

describe.skipIf(skipLab).each(BACKENDS)('down with $name: clean removal', (backend) => {
  let t: LabRun;
  let before: string;
  let firstPlan: string[];
  let monitorPid: string;
  const snapshot = async () => `${await backend.fullState(t)}\n${await t.gw(['sh', '-c', SNAPSHOT])}`;
  const planIds = async () => (JSON.parse((await t.cli(['plan', '-i', t.lab.inventoryPath, '--json'])).stdout).hosts[0].changes as { action: string; id: string }[]).map((c) => `${c.action} ${c.id}`).sort();

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: backend.name });
    await t.lab.execOnGateway(0, ['iptables-restore', '--noflush'], { input: FOREIGN_MANGLE });
    await t.lab.execOnGateway(0, ['iptables-restore', '--noflush'], { input: FOREIGN_NAT });
    await t.lab.execOnGateway(0, ['nft', '-f', '-'], { input: FOREIGN_NFT });
    await t.gw(['ip', 'rule', 'add', 'priority', '5000', 'fwmark', '0x100/0x100', 'lookup', 'main']);
    before = await snapshot();
    firstPlan = await planIds();
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    monitorPid = (await t.gw(['cat', '/run/lbprov/monitor.pid'])).trim();
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('down --check lists the removals and the settings it restores, exits 2, changes nothing', async () => {
    const installed = await snapshot();
    const { result, commands } = await t.traced(['down', '-i', t.lab.inventoryPath, '--check']);
    expect(result.code, result.stderr).toBe(2);
    for (const line of [`- ${backend.ids.pre}`, `- ${backend.ids.nat}`, '- ipv4/route-table:101', '- ipv4/ip-rule:100', '- file:/etc/lbprov/restore.sh', '- file:/etc/lbprov/firewall', '- service:monitor', '~ sysctl:net.ipv4.conf.wan1.rp_filter']) {
      expect(result.stdout).toContain(line);
    }
    expect(commands.every((c) => !c.mutating)).toBe(true);
    expect(await snapshot()).toEqual(installed);
  });

  it('down without a terminal and without --yes refuses', async () => {
    const result = await t.cli(['down', '-i', t.lab.inventoryPath]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--yes/);
  });

  it('down --yes leaves the gateway exactly as before the first up, foreign rules included', async () => {
    const result = await t.cli(['down', '-i', t.lab.inventoryPath, '--yes']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(await snapshot()).toEqual(before);
    expect(monitorPid).toMatch(/^\d+$/);
    // Not alive (a zombie waiting for its reaper counts as gone).
    expect(await t.gw(['sh', '-c', `s=$(awk '/^State:/ { print $2 }' /proc/${monitorPid}/status 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && echo running || echo stopped`])).toBe('stopped\n');
    expect(await t.gw(['sh', '-c', 'ls -A /run/lbprov; ls /var/lib/lbprov'])).not.toMatch(/state|monitor|sysctl\.orig/);
  });

  it('then down --check has nothing to do and plan shows the full install again', async () => {
    expect((await t.cli(['down', '-i', t.lab.inventoryPath, '--check'])).code).toBe(0);
    expect(await planIds()).toEqual(firstPlan);
  });
});
