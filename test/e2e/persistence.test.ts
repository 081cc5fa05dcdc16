/**
 * A "reboot" in the lab, once per firewall backend. After up, lbprov's live state is flushed by
 * hand (firewall objects, rules, routes, settings, the monitor), then the boot-time
 * /etc/lbprov/restore.sh brings the balancer back without the controller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countConnections } from '../../src/lab/index.js';
import { skipLab, startLab, type LabRun } from './harness.js';
import { BACKENDS, type BackendUnderTest } from './backends.js';

/** What a reboot loses of lbprov's state; the files in /etc stay. */
const forget = (backend: BackendUnderTest) => `
sh /etc/lbprov/monitor.sh stop
${backend.forget}
for p in 100 101 102 111 112 190; do ip rule del priority $p; done
ip route flush table 101; ip route flush table 102; ip route flush table 116
echo 0 > /proc/sys/net/ipv4/conf/wan1/rp_filter; echo 0 > /proc/sys/net/ipv4/conf/wan2/rp_filter
rm -f /run/lbprov/state
`;

describe.skipIf(skipLab).each(BACKENDS)('persistence with $name: the gateway comes back balanced without the controller', (backend) => {
  let t: LabRun;
  const routing = async () => t.gw(['sh', '-c', 'ip rule; ip route show table 101; ip route show table 102; ip route show table 116']);
  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: backend.name });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('up writes the boot-time files', async () => {
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await t.gw(['cat', backend.persisted.path])).toContain(backend.persisted.contains);
    expect(await t.gw(['sh', '-c', 'test -x /etc/lbprov/restore.sh && echo yes'])).toBe('yes\n');
  });

  it('after a flush of the live state, restore.sh brings back exactly what up made, twice over', async () => {
    await t.gw(['sh', '-c', forget(backend)]);
    expect(await backend.lbprovState(t)).toBe('');
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(2);

    const first = await t.lab.execOnGateway(0, ['sh', '/etc/lbprov/restore.sh']);
    expect(first.stderr).toBe('');
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout).toBe(0);

    // Idempotent: a second run changes nothing and duplicates no jump or rule.
    const before = { firewall: await backend.fullState(t), routing: await routing() };
    await t.lab.execOnGateway(0, ['sh', '/etc/lbprov/restore.sh']);
    expect({ firewall: await backend.fullState(t), routing: await routing() }).toEqual(before);
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });

  it('400 new connections split 300/100 again', async () => {
    const counts = await countConnections(t.lab, 0, 400);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 300, isp2: 100 });
  });
});
