/**
 * lbprov on a gateway that boots a real systemd (a systemd-nspawn container, see src/lab/systemd):
 * the monitor runs as lbprov-monitor.service and systemd restarts it when it dies; a real reboot
 * (the gateway's kernel state lost) brings the balancer back through lbprov.service with no lbprov
 * command, also with a link that is down at boot; the monitor's transitions are in its unit's
 * journal and `status` reads them; `down` leaves nothing of lbprov, across a reboot too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countConnections, cutUpstream, rebootGateway, restoreUpstream } from '../../src/lab/index.js';
import { BACKENDS } from './backends.js';
import { skipLab, startLab, type LabRun } from './harness.js';

const MONITOR = 'lbprov-monitor.service';

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface StatusJson {
  running: boolean;
  pid: number | null;
  restarts: number | null;
  eventsFrom: string;
  events: string[];
  balanced: string[];
  links: { name: string; state: string }[];
}

describe.skipIf(skipLab).each(BACKENDS)('a systemd gateway with $name', (backend) => {
  let t: LabRun;
  const status = async (): Promise<StatusJson> => {
    const out = await t.cli(['status', '-i', t.lab.inventoryPath, '--json']);
    return (JSON.parse(out.stdout) as { gateways: StatusJson[] }).gateways[0]!;
  };
  const isActive = async (name: string): Promise<boolean> => (await t.gw(['sh', '-c', `systemctl is-active ${name}; true`])).trim() === 'active';
  /** A unit's property; without a unit, the manager's own. */
  const unit = async (property: string, name?: string): Promise<string> => (await t.gw(['systemctl', 'show', '-p', property, '--value', ...(name ? [name] : [])])).trim();
  const lbprovTraces = async (): Promise<string> =>
    [
      await t.gw(['sh', '-c', 'ls /etc/lbprov /etc/systemd/system/lbprov* /etc/systemd/system/multi-user.target.d/lbprov.conf 2>/dev/null; true']),
      await t.gw(['sh', '-c', 'nft list tables 2>/dev/null | grep -w lbprov; iptables-save 2>/dev/null | grep LBPROV_; ip rule | grep -E "^1[0-9][0-9]:"; true']),
      await t.gw(['sh', '-c', `systemctl list-units --all --no-legend 'lbprov*' 2>/dev/null; true`]),
    ].join('');

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: backend.name, init: 'systemd' });
  }, 600_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('up installs the units and the monitor runs under systemd', async () => {
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await isActive(MONITOR)).toBe(true);
    // Started at boot through the drop-in, not a symlink lbprov would have to manage.
    expect(await unit('WantedBy', 'lbprov.service')).toContain('multi-user.target');
    const s = await status();
    expect(s.running).toBe(true);
    expect(s.pid).toBe(Number(await unit('MainPID', MONITOR)));
    expect(s.restarts).toBe(0);
    const second = await t.traced(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(second.result.code).toBe(0);
    expect(second.commands.filter((c) => c.mutating)).toEqual([]);
  });

  it('kill -9 of the monitor: systemd starts it again within its RestartSec, and status says so', async () => {
    const before = Number(await unit('MainPID', MONITOR));
    await t.gw(['kill', '-9', String(before)]);
    const after = await waitFor('a new monitor', 5_000, async () => {
      const pid = Number(await unit('MainPID', MONITOR));
      return pid > 0 && pid !== before && (await unit('ActiveState', MONITOR)) === 'active' ? pid : undefined;
    });
    expect(after).not.toBe(before);
    const s = await waitFor('status of the restarted monitor', 10_000, async () => {
      const now = await status();
      return now.running && now.pid === after ? now : undefined;
    });
    expect(s.restarts).toBe(1);
    const plain = await t.cli(['status', '-i', t.lab.inventoryPath]);
    expect(plain.stdout).toContain('systemd restarted the monitor 1 time');
  });

  it('a reboot brings the balancer back within 30 s of boot, with no lbprov command: plan exits 0, 300/100', async () => {
    const { ms } = await rebootGateway(t.lab, 0);
    await waitFor('the monitor after boot', 30_000, async () => ((await isActive(MONITOR)) ? true : undefined));
    const userspace = Number(await unit('UserspaceTimestampMonotonic'));
    const restored = Number(await unit('ActiveEnterTimestampMonotonic', 'lbprov.service'));
    const monitoring = Number(await unit('ActiveEnterTimestampMonotonic', MONITOR));
    const bootToBalancedS = (Math.max(restored, monitoring) - userspace) / 1e6;
    console.log(`${backend.name}: reboot ${ms} ms to sshd; systemd start to balancer restored ${((restored - userspace) / 1e6).toFixed(2)} s, to monitor running ${bootToBalancedS.toFixed(2)} s`);
    expect(bootToBalancedS).toBeGreaterThan(0);
    expect(bootToBalancedS).toBeLessThan(30);
    expect(await unit('Result', 'lbprov.service')).toBe('success');
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    const counts = await countConnections(t.lab, 0, 400);
    expect(counts.errors).toEqual({});
    expect(counts.byLink).toEqual({ isp1: 300, isp2: 100 });
  });

  it('a link down at boot stays out, joins when it comes up; the transitions are in the journal and in status', async () => {
    await cutUpstream(t.lab, 0, 'isp2');
    await rebootGateway(t.lab, 0, { hard: true });
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    await waitFor('isp2 down', 30_000, async () => ((await status()).links.find((l) => l.name === 'isp2')?.state === 'down' ? true : undefined));
    const alone = await countConnections(t.lab, 0, 100);
    expect(alone.errors).toEqual({});
    expect(alone.byLink.isp1).toBe(100);
    await restoreUpstream(t.lab, 0, 'isp2');
    await waitFor('isp2 back in the pool', 30_000, async () => ((await status()).balanced.includes('isp2') ? true : undefined));
    const counts = await countConnections(t.lab, 0, 400);
    expect(counts.byLink).toEqual({ isp1: 300, isp2: 100 });
    const journal = await t.gw(['journalctl', '-u', MONITOR, '-b', '--no-pager', '-q', '-o', 'cat']);
    expect(journal).toMatch(/isp2.*down/);
    expect(journal).toMatch(/isp2.*up/);
    const s = await status();
    expect(s.eventsFrom).toBe('journal');
    expect(s.events.some((e) => /isp2.*up/.test(e))).toBe(true);
  });

  it('down stops and removes every unit; a reboot after it leaves no trace of lbprov, only the lab baseline', async () => {
    const baseline = (await t.gw(['iptables-save', '-t', 'nat'])).split('\n').filter((l) => /MASQUERADE/.test(l) && !/LBPROV_/.test(l));
    expect(baseline.length).toBeGreaterThan(0);
    const down = await t.cli(['down', '-i', t.lab.inventoryPath, '--yes']);
    expect(down.code, down.stdout + down.stderr).toBe(0);
    expect(await isActive(MONITOR)).toBe(false);
    expect(await lbprovTraces()).toBe('');
    await rebootGateway(t.lab, 0);
    expect((await t.gw(['systemctl', 'is-system-running', '--wait'])).trim()).toBe('running');
    expect(await lbprovTraces()).toBe('');
    const nat = (await t.gw(['iptables-save', '-t', 'nat'])).split('\n').filter((l) => /MASQUERADE/.test(l));
    expect(nat).toEqual(baseline);
  });
});
