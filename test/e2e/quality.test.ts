/**
 * Issue 15 on a real lab gateway: links out of the pool on loss (iptables statistic drops in the
 * ISP namespace; this kernel has no netem) and on latency (a tbf queue filled by a flood), back
 * after their thresholds; sub-second failover at interval 0.2 s; hooks with their environment,
 * a slow one killed at its timeout without delaying failover; the Prometheus file against
 * `status --json`. Real ping probes, real TCP counted at the server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { countConnections, cutUpstream, restoreUpstream } from '../../src/lab/index.js';
import { skipLab, startLab, type LabRun } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The monitor's state file, read through the gateway's sshd's root (its private /run): no process per look. */
async function monitorState(t: LabRun): Promise<Record<string, string>> {
  const sshd = t.lab.state.processes.find((p) => p.role === 'sshd gw1')!;
  let text = '';
  try {
    text = readFileSync(`/proc/${sshd.pid}/root/run/lbprov/state`, 'utf8');
  } catch {
    // not written yet
  }
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Milliseconds until `check` holds of the monitor's state, or an error after budget + 5 s. */
async function until(t: LabRun, what: string, check: (s: Record<string, string>) => boolean, budgetMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const state = await monitorState(t);
    if (check(state)) return performance.now() - started;
    if (performance.now() - started > budgetMs + 5_000) throw new Error(`${what} did not happen within ${budgetMs + 5_000} ms: ${JSON.stringify(state)}`);
    await sleep(10);
  }
}

describe.skipIf(skipLab)('link quality, hooks and metrics on a 3:2:1 lab gateway', () => {
  let t: LabRun;
  let base: string;
  const children: ChildProcess[] = [];
  const up = async (name: string, monitor: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const doc = parseDocument(base);
    doc.setIn(['defaults', 'monitor'], monitor);
    for (const [k, v] of Object.entries(extra)) doc.setIn(['gateways', 'gw1', k], v);
    const path = `${t.work}/${name}.yml`;
    writeFileSync(path, doc.toString({ lineWidth: 0 }));
    const result = await t.cli(['up', '-i', path, '--yes']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    await until(t, 'every link up', (s) => ['isp1', 'isp2', 'isp3'].every((l) => s[`link.${l}`] === 'up'), 10_000);
    return path;
  };
  const isp = (k: number) => t.lab.state.isps[k - 1]!.ns;

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 2, 1], firewall: 'nftables' });
    base = readFileSync(t.lab.inventoryPath, 'utf8');
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await t?.destroy();
  });

  it('loss: 50 % leaves the pool within the window and comes back after the loss stops; 3 % does not move it', async () => {
    const monitor = { interval: 0.5, timeout: 0.5, down: 3, up: 3, window: 20, loss_pct: { down: 20, up: 5 } };
    await up('loss', monitor);
    const drop = (p: number) => ['iptables', '-w', '-I', 'FORWARD', '-i', 'gw1', '-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP'];
    // 3 %: twenty rounds' loss stays under 20 % (five lost probes in twenty are needed).
    await t.lab.exec(isp(1), drop(0.03));
    await sleep(15_000);
    const calm = await monitorState(t);
    expect(calm['link.isp1']).toBe('up');
    expect(calm['link.isp1.transitions']).toBe('0');
    await t.lab.exec(isp(1), ['iptables', '-w', '-D', 'FORWARD', '-i', 'gw1', '-m', 'statistic', '--mode', 'random', '--probability', '0.03', '-j', 'DROP']);

    await t.lab.exec(isp(1), drop(0.5));
    const outMs = await until(t, 'isp1 out of the pool', (s) => s['link.isp1.in_pool'] === '0', 10_000);
    console.log(`loss: isp1 out of the pool ${(outMs / 1000).toFixed(2)} s after 50 % loss began (window 20 x 0.5 s = 10 s)`);
    expect(outMs).toBeLessThanOrEqual(10_000);
    expect((await countConnections(t.lab, 0, 60)).byLink.isp1).toBe(0);
    await t.lab.exec(isp(1), ['iptables', '-w', '-D', 'FORWARD', '-i', 'gw1', '-m', 'statistic', '--mode', 'random', '--probability', '0.5', '-j', 'DROP']);
    const backMs = await until(t, 'isp1 back', (s) => s['link.isp1'] === 'up' && s['link.isp1.in_pool'] === '1', 15_000);
    console.log(`loss: isp1 back ${(backMs / 1000).toFixed(2)} s after the loss stopped`);
    expect((await countConnections(t.lab, 0, 60)).byLink).toEqual({ isp1: 30, isp2: 20, isp3: 10 });
  });

  it('latency: a link whose RTT grows past the down threshold leaves, and comes back once it falls under the up one', async () => {
    const monitor = { interval: 1, timeout: 1, down: 3, up: 3, window: 4, latency_ms: { down: 300, up: 150 } };
    await up('latency', monitor);
    // A 256 kbit/s queue of up to 600 ms on ISP 2's side towards the gateway, kept full by a flood of
    // forwarded traffic (a flood the ISP sent itself would be paced by its own socket; ping manages
    // about 90 packets a second on this kernel's timer, 1 Mbit/s of 1400-byte packets).
    const gateway = t.lab.gateway(0);
    await t.lab.exec(isp(2), ['tc', 'qdisc', 'add', 'dev', gateway.name, 'root', 'tbf', 'rate', '256kbit', 'burst', '3kb', 'latency', '600ms']);
    const flood = spawn('ip', ['netns', 'exec', t.lab.state.server.ns, 'ping', '-q', '-i', '0.005', '-s', '1400', gateway.links[1]!.gatewayAddress], { stdio: 'ignore' });
    children.push(flood);
    const outMs = await until(t, 'isp2 degraded on latency', (s) => s['link.isp2'] === 'degraded' && s['link.isp2.in_pool'] === '0', 15_000);
    const slow = await monitorState(t);
    console.log(`latency: isp2 degraded ${(outMs / 1000).toFixed(2)} s after its queue filled (rtt ${Number(slow['link.isp2.rtt_us']) / 1000} ms)`);
    expect(slow['link.isp2.why']).toMatch(/^latency \d+ ms over the window \(down above 300 ms\)$/);
    expect((await countConnections(t.lab, 0, 40)).byLink.isp2).toBe(0);
    flood.kill('SIGTERM');
    await t.lab.exec(isp(2), ['tc', 'qdisc', 'del', 'dev', gateway.name, 'root']);
    await until(t, 'isp2 back', (s) => s['link.isp2'] === 'up', 15_000);
    expect((await countConnections(t.lab, 0, 60)).byLink).toEqual({ isp1: 30, isp2: 20, isp3: 10 });
  });

  it('sub-second: at interval 0.2 s a cut upstream is out of the pool in under a second', async () => {
    await up('fast', { interval: 0.2, timeout: 0.2, down: 3, up: 3 });
    const started = performance.now();
    await cutUpstream(t.lab, 0, 'isp1');
    const ms = await until(t, 'isp1 out', (s) => s['link.isp1.in_pool'] === '0', 1_000);
    const total = performance.now() - started;
    console.log(`sub-second: isp1 out of the pool ${(total / 1000).toFixed(2)} s after the cut (interval 0.2 s, down 3)`);
    expect(total).toBeLessThanOrEqual(1_000 + (total - ms));
    expect(ms).toBeLessThanOrEqual(1_000);
    await restoreUpstream(t.lab, 0, 'isp1');
    await until(t, 'isp1 back', (s) => s['link.isp1'] === 'up', 3_000);
  });

  it('hooks run with the change in their environment; a 60 s hook is killed at its timeout and does not delay failover', async () => {
    const dir = `${t.work}/hooks`;
    const { mkdirSync, chmodSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/record.sh`, '#!/bin/sh\necho "$LBPROV_LINK $LBPROV_EVENT live=$LBPROV_LIVE_LINKS reason=$LBPROV_REASON" >> /var/log/lbprov/hooks.out\n');
    writeFileSync(`${dir}/slow.sh`, '#!/bin/sh\nsleep 60\n');
    for (const f of ['record.sh', 'slow.sh']) chmodSync(`${dir}/${f}`, 0o755);
    await up('hooks', { interval: 0.5, timeout: 0.5, down: 3, up: 3 }, { hooks: [`${dir}/slow.sh`, `${dir}/record.sh`], hook_timeout: 2 });
    await t.gw(['sh', '-c', 'rm -f /var/log/lbprov/hooks.out']);
    const started = performance.now();
    await cutUpstream(t.lab, 0, 'isp3');
    const ms = await until(t, 'isp3 down', (s) => s['link.isp3'] === 'down', 3_000);
    console.log(`hooks: isp3 down ${(ms / 1000).toFixed(2)} s after the cut with a 60 s hook installed`);
    expect(performance.now() - started).toBeLessThan(3_000);
    await restoreUpstream(t.lab, 0, 'isp3');
    await until(t, 'isp3 up', (s) => s['link.isp3'] === 'up', 5_000);
    const recorded = () => t.gw(['sh', '-c', 'cat /var/log/lbprov/hooks.out 2>/dev/null; true']);
    for (let i = 0; i < 50 && !(await recorded()).includes('isp3 up'); i++) await sleep(100);
    const lines = (await recorded()).trim().split('\n');
    expect(lines[0]).toMatch(/^isp3 down live=isp1,isp2 reason=3 failed rounds in a row/);
    expect(lines[1]).toMatch(/^isp3 up live=isp1,isp2,isp3 reason=3 good rounds in a row/);
    for (let i = 0; i < 50 && !/slow\.sh \(isp3 down\) killed after 2s/.test(await t.gw(['cat', '/var/log/lbprov/monitor.log'])); i++) await sleep(100);
    expect(await t.gw(['cat', '/var/log/lbprov/monitor.log'])).toMatch(/slow\.sh \(isp3 down\) killed after 2s/);
  });

  it('the Prometheus file parses, and its values are what status --json says', async () => {
    await t.gw(['mkdir', '-p', '/run/lbprov-metrics']);
    const path = await up('metrics', { interval: 0.5, timeout: 0.5, down: 3, up: 3, loss_pct: { down: 50, up: 10 } }, { metrics_dir: '/run/lbprov-metrics' });
    await cutUpstream(t.lab, 0, 'isp2');
    await until(t, 'isp2 down', (s) => s['link.isp2'] === 'down', 4_000);
    // The monitor writes both files together: read until both come from the same write.
    let status: { updated: number; revision: string; balanced: string[]; links: { name: string; inPool: boolean; state: string; lossPct: number; transitions: number }[] };
    let families: ReturnType<typeof parsePrometheusTextFormat>;
    const value = (name: string, labels: Record<string, string> = {}) =>
      Number(families.find((f) => f.name === name)!.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))!.value);
    for (let attempt = 0; ; attempt++) {
      status = JSON.parse((await t.cli(['status', '-i', path, '--json'])).stdout).gateways[0];
      families = parsePrometheusTextFormat(await t.gw(['cat', '/run/lbprov-metrics/lbprov.prom']));
      if (value('lbprov_monitor_last_update_timestamp_seconds') === status.updated || attempt === 5) break;
    }
    expect(value('lbprov_monitor_last_update_timestamp_seconds')).toBe(status.updated);
    for (const link of status.links) {
      expect(value('lbprov_link_up', { link: link.name }), link.name).toBe(link.inPool ? 1 : 0);
      expect(value('lbprov_link_state', { link: link.name, state: link.state })).toBe(1);
      expect(value('lbprov_link_loss_ratio', { link: link.name })).toBeCloseTo(link.lossPct / 100, 2);
      expect(value('lbprov_link_transitions_total', { link: link.name })).toBe(link.transitions);
    }
    expect(value('lbprov_link_up', { link: 'isp2' })).toBe(0);
    expect(value('lbprov_live_links')).toBe(status.balanced.length);
    expect(families.find((f) => f.name === 'lbprov_balancer_info')!.metrics[0]!.labels!.revision).toBe(status.revision);
    await restoreUpstream(t.lab, 0, 'isp2');
  });
});
