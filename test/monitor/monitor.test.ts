import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDesiredState, resourcesFromText } from '../../src/render/desired.js';
import { ownedRanges } from '../../src/model/ownership.js';
import type { IptablesChainResource } from '../../src/model/resources.js';
import { iptablesBackend } from '../../src/firewall/iptables/index.js';
import { factsFor } from '../helpers/gateway.js';
import { alive, CLOCK_START, MonitorSandbox, monitoredGateway, playbook, templates, waitFor } from './harness.js';

const sandboxes: MonitorSandbox[] = [];
function sandbox(...args: ConstructorParameters<typeof MonitorSandbox>): MonitorSandbox {
  const s = new MonitorSandbox(...args);
  sandboxes.push(s);
  return s;
}

afterEach(() => {
  for (const s of sandboxes.splice(0)) {
    for (const pidfile of ['monitor.pid', 'monitor.worker.pid']) {
      const pid = s.pidFrom(pidfile);
      if (alive(pid)) process.kill(pid!, 'SIGKILL');
    }
    s.remove();
  }
});

/** LBPROV_BALANCE as `up` renders it when the monitor reports `down` links down. */
function renderedBalance(gw: ReturnType<typeof monitoredGateway>, down: string[]): string[] {
  const health = Object.fromEntries(down.map((name) => [`link.${name}`, 'down']));
  const chain = renderDesiredState(gw, playbook, templates, factsFor(gw, health)).find((r) => r.id === 'ipv4/iptables-chain:mangle:LBPROV_BALANCE') as IptablesChainResource;
  return chain.rules;
}

/** The LBPROV_BALANCE rules an iptables-restore payload sets, canonicalised like the diff does. */
function payloadBalance(payload: string, gw: ReturnType<typeof monitoredGateway>): string[] {
  const resources = resourcesFromText({ type: 'firewall', backend: 'iptables', table: 'mangle', template: 'payload' }, payload, 'payload', ownedRanges(gw), iptablesBackend);
  expect(resources.map((r) => r.id)).toEqual(['ipv4/iptables-chain:mangle:LBPROV_BALANCE']);
  return (resources[0] as IptablesChainResource).rules;
}

describe('monitor.sh run (stubbed ping, fake clock)', () => {
  it('declares a link down after `down` failed rounds and swaps in the chain `up` would render', async () => {
    const gw = monitoredGateway([3, 1], { down: 3, up: 2 });
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['ok', 'ok', 'fail']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(8);
    expect(r.code).toBe(0);
    // Rounds at 1000 and 1001 answer; 1002, 1003, 1004 fail: down at the third failure.
    expect(r.restores.map((x) => x.t)).toEqual([CLOCK_START + 4]);
    expect(r.calls.filter((c) => / iptables-restore /.test(c))).toEqual([`t=${CLOCK_START + 4} iptables-restore -w 10 --noflush`]);
    expect(payloadBalance(r.restores[0]!.payload, gw)).toEqual(renderedBalance(gw, ['isp1']));
    expect(r.state).toMatchObject({
      'link.isp1': 'down',
      'link.isp1.since': String(CLOCK_START + 4),
      'link.isp1.last': '0/1 fail',
      'link.isp2': 'up',
      'link.isp2.last': '1/1 ok 3ms',
      mechanism: 'chain-swap',
      all_down: '0',
      balanced: 'isp2',
    });
    expect(r.log).toMatch(/link isp1 down: 3 failed rounds in a row \(0\/1 probes answered, 1 needed\)/);
    expect(r.calls).toContain(`t=${CLOCK_START + 4} logger -t lbprov -- link isp1 down: 3 failed rounds in a row (0/1 probes answered, 1 needed)`);
  });

  it('probes each link from its own address with the link timeout', async () => {
    const gw = monitoredGateway([3, 1], { timeoutS: 1 });
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['ok']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(2);
    const pings = r.calls.filter((c) => c.includes(' ping '));
    expect(pings).toContain(`t=${CLOCK_START} ping -n -c 1 -W 1 -I 203.0.113.2 198.51.100.1`);
    expect(pings).toContain(`t=${CLOCK_START} ping -n -c 1 -W 1 -I 203.0.113.10 198.51.100.9`);
    expect(r.restores).toEqual([]);
  });

  it("deletes only the dead link's tracked connections and moves the main default route to the live link", async () => {
    const gw = monitoredGateway([3, 1], { down: 2 });
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['fail']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(5);
    const conntrack = r.calls.filter((c) => c.includes(' conntrack '));
    expect(conntrack).toEqual([`t=${CLOCK_START + 1} conntrack -D -m 0x10000000/0xf0000000`]);
    expect(r.calls).toContain(`t=${CLOCK_START + 1} ip route replace default via 203.0.113.9 dev wan2`);
    expect(r.mainDefault).toBe('default via 203.0.113.9 dev wan2');
    expect(r.log).toMatch(/link isp1: deleted 2 tracked connections with mark 0x10000000\/0xf0000000/);
  });

  it("leaves a main default route that is not lbprov's (a VPN's) alone", async () => {
    const gw = monitoredGateway([3, 1], { down: 2 });
    const s = sandbox(gw);
    s.setMainDefault('default via 192.0.2.77 dev tun0');
    s.answers('198.51.100.1', ['fail']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(5);
    expect(r.restores).toHaveLength(1);
    expect(r.calls.filter((c) => c.includes(' ip route replace'))).toEqual([]);
    expect(r.mainDefault).toBe('default via 192.0.2.77 dev tun0');
  });

  it('brings a link back after `up` good rounds, with the full chain again', async () => {
    const gw = monitoredGateway([3, 1], { down: 3, up: 2 });
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['fail', 'fail', 'fail', 'ok']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(8);
    expect(r.restores.map((x) => x.t)).toEqual([CLOCK_START + 2, CLOCK_START + 4]);
    expect(payloadBalance(r.restores[1]!.payload, gw)).toEqual(renderedBalance(gw, []));
    expect(r.state).toMatchObject({ 'link.isp1': 'up', 'link.isp1.since': String(CLOCK_START + 4), balanced: 'isp1,isp2' });
    expect(r.mainDefault).toBe('default via 203.0.113.1 dev wan1');
    expect(r.log).toMatch(/link isp1 up: 2 good rounds in a row/);
  });

  it('does not flip the chain for a link flapping faster than the thresholds', async () => {
    const gw = monitoredGateway([3, 1], { down: 3, up: 3 });
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['fail', 'fail', 'ok', 'fail', 'fail', 'ok', 'fail', 'ok', 'fail', 'fail', 'ok', 'fail', 'fail', 'ok']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(14);
    expect(r.calls.filter((c) => c.includes(' ping ') && c.includes('198.51.100.1')).length).toBeGreaterThanOrEqual(14);
    expect(r.restores).toEqual([]);
    expect(r.calls.filter((c) => / (conntrack|ip route replace) /.test(c))).toEqual([]);
    expect(r.state['link.isp1']).toBe('up');
  });

  it('keeps everything as it is when every link is down, and says so', async () => {
    const gw = monitoredGateway([3, 1], { down: 2, up: 2 });
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['fail']);
    s.answers('198.51.100.9', ['ok', 'ok', 'ok', 'fail']);
    const r = await s.runFor(8);
    // isp1 goes at 1001 (swap to isp2 alone); isp2 goes at 1004: nothing more is touched.
    expect(r.restores.map((x) => x.t)).toEqual([CLOCK_START + 1]);
    expect(r.calls.filter((c) => c.includes(' conntrack '))).toEqual([`t=${CLOCK_START + 1} conntrack -D -m 0x10000000/0xf0000000`]);
    expect(r.mainDefault).toBe('default via 203.0.113.9 dev wan2');
    expect(r.state).toMatchObject({ 'link.isp1': 'down', 'link.isp2': 'down', all_down: '1', balanced: 'isp2' });
    expect(r.log).toMatch(/all links down: keeping the balancing and the default route as they are \(links isp2\)/);
  });

  it('starts from the previous state file and keeps the chain until the thresholds are met', async () => {
    const gw = monitoredGateway([3, 1], { up: 3 });
    const s = sandbox(gw);
    s.writeState(['mechanism=chain-swap', 'all_down=0', 'link.isp1=down', 'link.isp1.since=900', 'link.isp2=up', 'link.isp2.since=800']);
    s.answers('198.51.100.1', ['ok']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(6);
    expect(r.restores.map((x) => x.t)).toEqual([CLOCK_START + 2]);
    expect(payloadBalance(r.restores[0]!.payload, gw)).toEqual(renderedBalance(gw, []));
    expect(r.state['link.isp2.since']).toBe('800');
  });

  it('keeps 5:2:1 in ratio over the links that are left', async () => {
    const gw = monitoredGateway([5, 2, 1], { down: 1 });
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['fail']);
    s.answers('198.51.100.9', ['ok']);
    s.answers('198.51.100.17', ['ok']);
    const r = await s.runFor(3);
    expect(r.restores).toHaveLength(1);
    const rules = payloadBalance(r.restores[0]!.payload, gw);
    expect(rules).toEqual(renderedBalance(gw, ['isp1']));
    expect(rules.filter((x) => x.endsWith('0x20000000/0xf0000000'))).toHaveLength(2);
    expect(rules.filter((x) => x.endsWith('0x30000000/0xf0000000'))).toHaveLength(1);
    expect(r.state.balanced).toBe('isp2,isp3');
  });

  it('with the condition match, writes 0/1 per link instead of swapping chains', async () => {
    const gw = monitoredGateway([3, 1], { down: 2 });
    const facts = factsFor(gw);
    facts.firewall.iptables!.registeredMatches = ['condition'];
    const s = sandbox(gw, facts);
    // The kernel creates these files when the rules using them load.
    writeFileSync(join(s.conditions, 'lbprov_isp1'), '0\n');
    writeFileSync(join(s.conditions, 'lbprov_isp2'), '0\n');
    s.answers('198.51.100.1', ['ok', 'fail']);
    s.answers('198.51.100.9', ['ok']);
    const r = await s.runFor(5);
    expect(r.restores).toEqual([]);
    expect(readFileSync(join(s.conditions, 'lbprov_isp1'), 'utf8')).toBe('0\n');
    expect(readFileSync(join(s.conditions, 'lbprov_isp2'), 'utf8')).toBe('1\n');
    expect(r.state).toMatchObject({ mechanism: 'condition', 'link.isp1': 'down' });
    expect(r.calls.filter((c) => c.includes(' conntrack '))).toEqual([`t=${CLOCK_START + 2} conntrack -D -m 0x10000000/0xf0000000`]);
  });
});

describe('monitor.sh start/stop (real clock, plain supervisor)', () => {
  it('starts detached, restarts a killed worker, and stops by pidfile', async () => {
    const gw = monitoredGateway([3, 1]);
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['ok']);
    s.answers('198.51.100.9', ['ok']);
    await s.control('start', 'rev1');
    const supervisor = s.pidFrom('monitor.pid');
    expect(alive(supervisor)).toBe(true);
    expect(readFileSync(`/proc/${supervisor}/cmdline`, 'utf8').split('\0')).toContain('supervise');
    expect(readFileSync(join(s.run, 'monitor.revision'), 'utf8')).toBe('rev1\n');
    const worker = await waitFor('the worker', () => alive(s.pidFrom('monitor.worker.pid')) && s.pidFrom('monitor.worker.pid'));

    process.kill(worker, 'SIGKILL');
    const replacement = await waitFor('a new worker', () => {
      const pid = s.pidFrom('monitor.worker.pid');
      return pid !== worker && alive(pid) && pid;
    });
    expect(s.pidFrom('monitor.pid')).toBe(supervisor);
    expect(readFileSync(join(s.logDir, 'monitor.log'), 'utf8')).toMatch(/monitor worker exited \(status 137\); restarting in 1s/);

    await s.control('restart', 'rev2');
    expect(alive(supervisor)).toBe(false);
    expect(alive(replacement)).toBe(false);
    expect(alive(s.pidFrom('monitor.pid'))).toBe(true);
    expect(readFileSync(join(s.run, 'monitor.revision'), 'utf8')).toBe('rev2\n');

    const second = s.pidFrom('monitor.pid')!;
    await s.control('stop');
    expect(alive(second)).toBe(false);
    expect(s.pidFrom('monitor.pid')).toBeNull();
  });

  it('a worker whose supervisor was killed exits instead of running unsupervised', async () => {
    const gw = monitoredGateway([3, 1]);
    const s = sandbox(gw);
    s.answers('198.51.100.1', ['ok']);
    s.answers('198.51.100.9', ['ok']);
    await s.control('start', 'rev1');
    const supervisor = s.pidFrom('monitor.pid')!;
    const worker = await waitFor('the worker', () => alive(s.pidFrom('monitor.worker.pid')) && s.pidFrom('monitor.worker.pid'));
    process.kill(supervisor, 'SIGKILL');
    await waitFor('the worker to exit', () => !alive(worker));
    expect(readFileSync(join(s.logDir, 'monitor.log'), 'utf8')).toMatch(new RegExp(`supervisor ${supervisor} is gone; worker ${worker} exits`));
  });
});
