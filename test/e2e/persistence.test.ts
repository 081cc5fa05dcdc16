/**
 * Issue 3: a "reboot" in the lab. After up, lbprov's live state is flushed by hand
 * (chains, jumps, rules, routes, settings, the monitor), then the boot-time
 * /etc/lbprov/restore.sh brings the balancer back without the controller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countConnections } from '../../src/lab/index.js';
import { skipLab, startLab, type LabRun } from './harness.js';

/** What a reboot loses of lbprov's state; the files in /etc stay. */
const FORGET = `
sh /etc/lbprov/monitor.sh stop
for j in "mangle PREROUTING LBPROV_PRE" "mangle OUTPUT LBPROV_OUT" "nat POSTROUTING LBPROV_NAT"; do set -- $j; iptables -w -t $1 -D $2 -j $3; done
for c in LBPROV_PRE LBPROV_BALANCE LBPROV_OUT; do iptables -w -t mangle -F $c; done
for c in LBPROV_PRE LBPROV_BALANCE LBPROV_OUT; do iptables -w -t mangle -X $c; done
iptables -w -t nat -F LBPROV_NAT; iptables -w -t nat -X LBPROV_NAT
for p in 100 101 102 111 112; do ip rule del priority $p; done
ip route flush table 101; ip route flush table 102
echo 0 > /proc/sys/net/ipv4/conf/wan1/rp_filter; echo 0 > /proc/sys/net/ipv4/conf/wan2/rp_filter
rm -f /run/lbprov/state
`;

describe.skipIf(skipLab)('persistence: the gateway comes back balanced without the controller', () => {
  let t: LabRun;
  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1] });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('up writes the boot-time files', async () => {
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await t.gw(['cat', '/etc/lbprov/persist/iptables.rules'])).toContain('#jump PREROUTING -j LBPROV_PRE');
    expect(await t.gw(['sh', '-c', 'test -x /etc/lbprov/restore.sh && echo yes'])).toBe('yes\n');
  });

  it('after a flush of the live state, restore.sh brings back exactly what up made, twice over', async () => {
    await t.gw(['sh', '-c', FORGET]);
    expect(await t.gw(['sh', '-c', 'iptables-save | grep -c LBPROV_ || true'])).toBe('0\n');
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(2);

    const first = await t.lab.execOnGateway(0, ['sh', '/etc/lbprov/restore.sh']);
    expect(first.stderr).toBe('');
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout).toBe(0);

    // Idempotent: a second run changes nothing and duplicates no jump or rule.
    const before = await t.gw(['sh', '-c', 'iptables-save -t mangle | grep -v "^[#:]"; iptables-save -t nat | grep -v "^[#:]"; ip rule; ip route show table 101; ip route show table 102']);
    await t.lab.execOnGateway(0, ['sh', '/etc/lbprov/restore.sh']);
    const after = await t.gw(['sh', '-c', 'iptables-save -t mangle | grep -v "^[#:]"; iptables-save -t nat | grep -v "^[#:]"; ip rule; ip route show table 101; ip route show table 102']);
    expect(after.replace(/\[\d+:\d+\]/g, '')).toEqual(before.replace(/\[\d+:\d+\]/g, ''));
    expect(after.split('\n').filter((l) => l === '-A PREROUTING -j LBPROV_PRE')).toHaveLength(1);
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });

  it('400 new connections split 300/100 again', async () => {
    const counts = await countConnections(t.lab, 0, 400);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 300, isp2: 100 });
  });
});
