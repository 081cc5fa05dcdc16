/**
 * A real reboot, once per firewall backend, on a systemd lab gateway: the reboot loses every bit of
 * lbprov's kernel state (the gateway's namespace is made again), and lbprov.service brings the
 * balancer back at boot without the controller, after a clean shutdown and after a power cut.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countConnections, rebootGateway } from '../../src/lab/index.js';
import { skipLab, startLab, type LabRun } from './harness.js';
import { BACKENDS } from './backends.js';

describe.skipIf(skipLab).each(BACKENDS)('persistence with $name across real reboots of a systemd gateway', (backend) => {
  let t: LabRun;
  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: backend.name, init: 'systemd' });
  }, 600_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('up installs the balancer and its boot unit', async () => {
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await t.gw(['cat', '/etc/systemd/system/multi-user.target.d/lbprov.conf'])).toContain('lbprov.service');
  });

  it.each([false, true])('after a reboot (hard: %s), lbprov.service restores it: no plan changes, 300/100 again', async (hard) => {
    await rebootGateway(t.lab, 0, { hard });
    expect((await t.gw(['systemctl', 'is-system-running', '--wait'])).trim()).toBe('running');
    expect((await t.gw(['systemctl', 'show', '-p', 'Result', '--value', 'lbprov.service'])).trim()).toBe('success');
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    const counts = await countConnections(t.lab, 0, 400);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 300, isp2: 100 });
  });
});
