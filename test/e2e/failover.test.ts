/**
 * The link monitor `up` deploys, on a 3-link lab gateway with real sshd, ping and
 * conntrack, once per firewall backend (iptables-restore or nft swaps the balancing chain).
 * The chain-swap mechanism is tested for real here (this kernel has no `condition` match;
 * that path is covered by test/render/failover.test.ts and test/monitor/).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { countConnections, cutUpstream, restoreUpstream, startLongConnection, type LongConnection } from '../../src/lab/index.js';
import { skipLab, startLab, type LabRun, type RunResult } from './harness.js';
import { addForeignRules, BACKENDS, foreignForwardPackets } from './backends.js';

const MONITOR = { interval: 1, timeout: 1, reliability: 1, down: 3, up: 3 };
const DETECT_BUDGET_MS = (MONITOR.interval * MONITOR.down + 2) * 1000;
const RECOVER_BUDGET_MS = (MONITOR.interval * MONITOR.up + 2) * 1000;
const STATUS_MODULE = resolve(import.meta.dirname, '../../dist/cli/status.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skipLab).each(BACKENDS)('failover with $name: link monitor with chain swap on a 3:2:1 lab gateway', (backend) => {
  let t: LabRun;
  const longConnections: LongConnection[] = [];

  const monitorState = async (): Promise<Record<string, string>> => {
    const text = (await t.lab.execOnGateway(0, ['cat', '/run/lbprov/state'], { allowFailure: true })).stdout;
    return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  const runPid = async (file: string): Promise<number | null> => {
    const text = (await t.lab.execOnGateway(0, ['cat', `/run/lbprov/${file}`], { allowFailure: true })).stdout.trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  };
  /** Running and not a zombie (an orphan the host's init has not reaped yet still answers kill -0). */
  const isAlive = async (pid: number | null) =>
    pid !== null && /^State:\s+[^ZX]/m.test((await t.lab.execOnGateway(0, ['cat', `/proc/${pid}/status`], { allowFailure: true })).stdout);
  const balanceChain = () => backend.balanceRules(t);
  /** Milliseconds until the monitor reports `link` as `health`. */
  const timeUntil = async (link: string, health: 'up' | 'down', budgetMs: number): Promise<number> => {
    const started = performance.now();
    while (performance.now() - started < budgetMs + 5_000) {
      if ((await monitorState())[`link.${link}`] === health) return performance.now() - started;
      await sleep(100);
    }
    throw new Error(`the monitor did not report ${link} ${health} within ${budgetMs + 5_000} ms`);
  };
  /** `lbprov status` as its own process (the module the CLI's `status` command runs). */
  const status = (json: boolean): Promise<RunResult> =>
    new Promise((done) => {
      const code = `import { statusCommand } from ${JSON.stringify(STATUS_MODULE)}; process.exitCode = await statusCommand({ inventory: ${JSON.stringify(t.lab.inventoryPath)}, forks: '4', json: ${json} });`;
      execFile(process.execPath, ['--input-type=module', '-e', code], { cwd: t.work, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 }, (error, stdout, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });

  let foreign: string;
  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 2, 1], firewall: backend.name });
    await addForeignRules(t);
    foreign = await backend.foreignState(t);
    // Fast probing so the test measures seconds, not tens of seconds.
    const doc = parseDocument(readFileSync(t.lab.inventoryPath, 'utf8'));
    // setIn: the lab's defaults (its firewall backend) stay.
    doc.setIn(['defaults', 'monitor'], MONITOR);
    writeFileSync(t.lab.inventoryPath, doc.toString({ lineWidth: 0 }));
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.stderr + up.stdout).not.toMatch(/error/i);
    expect(up.code).toBe(0);
    expect(await t.gw(['cat', '/etc/lbprov/firewall'])).toBe(`${backend.name}\n`);
  });

  afterAll(async () => {
    await Promise.all(longConnections.map((c) => c.close()));
    await t?.destroy();
  });

  it('deploys a running monitor that sees every link up, and says which mechanism and why', async () => {
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code).toBe(0);
    const s = await status(true);
    expect(s.code).toBe(0);
    const [gw] = JSON.parse(s.stdout).gateways;
    expect(gw).toMatchObject({ ok: true, deployed: true, running: true, mechanism: 'chain-swap', balanced: ['isp1', 'isp2', 'isp3'] });
    expect(gw.links.map((l: { state: string }) => l.state)).toEqual(['up', 'up', 'up']);
    const first = await countConnections(t.lab, 0, 120);
    expect(first.byLink).toEqual({ isp1: 60, isp2: 40, isp3: 20 });
  });

  it('fails over when ISP 1 is cut upstream, keeps healthy connections, recovers, and plan sees no drift', async () => {
    // A long-lived connection on a link that stays healthy.
    let kept: LongConnection | undefined;
    for (let i = 0; i < 6 && !kept; i++) {
      const c = await startLongConnection(t.lab, 0);
      longConnections.push(c);
      if (c.link && c.link !== 'isp1') kept = c;
    }
    expect(kept, 'a long connection through isp2 or isp3').toBeDefined();
    expect(await kept!.check()).toBe(true);

    await cutUpstream(t.lab, 0, 'isp1');
    const detectedMs = await timeUntil('isp1', 'down', DETECT_BUDGET_MS);
    console.log(`failover: isp1 detected down ${(detectedMs / 1000).toFixed(2)} s after the cut (budget ${DETECT_BUDGET_MS / 1000} s)`);
    expect(detectedMs).toBeLessThanOrEqual(DETECT_BUDGET_MS);
    const during = await countConnections(t.lab, 0, 120);
    expect(during.errors).toEqual({});
    expect(during.byLink).toEqual({ isp1: 0, isp2: 80, isp3: 40 });
    expect(await kept!.check()).toBe(true);
    // The monitor's swap is the desired state for this health: no drift, and up would not resurrect isp1.
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
    const down = JSON.parse((await status(true)).stdout).gateways[0];
    expect(down).toMatchObject({ running: true, balanced: ['isp2', 'isp3'], allDown: false });
    expect(down.links[0]).toMatchObject({ name: 'isp1', state: 'down', connections: 0 });
    expect(down.links[0].last).toMatch(/^0\/1 fail$/);
    const log = await t.gw(['cat', '/var/log/lbprov/monitor.log']);
    expect(log).toMatch(/link isp1 down: 3 failed rounds in a row/);
    // The main table's default is not lbprov's and stays; the gateway's own traffic leaves by a live link.
    expect((await t.gw(['ip', 'route', 'show', 'table', 'main', 'default'])).trim()).toMatch(/dev wan1\b/);
    expect(await t.gw(['ip', 'route', 'get', t.lab.state.server.address])).not.toMatch(/dev wan1\b/);
    // The swap changed lbprov's balancing and nothing else.
    expect(await backend.foreignState(t)).toEqual(foreign);

    await restoreUpstream(t.lab, 0, 'isp1');
    const recoveredMs = await timeUntil('isp1', 'up', RECOVER_BUDGET_MS);
    console.log(`failover: isp1 detected up ${(recoveredMs / 1000).toFixed(2)} s after the restore (budget ${RECOVER_BUDGET_MS / 1000} s)`);
    expect(recoveredMs).toBeLessThanOrEqual(RECOVER_BUDGET_MS);
    const forwarded = await foreignForwardPackets(t);
    const after = await countConnections(t.lab, 0, 120);
    expect(after.byLink).toEqual({ isp1: 60, isp2: 40, isp3: 20 });
    expect(await kept!.check()).toBe(true);
    expect(await backend.foreignState(t)).toEqual(foreign);
    expect(await foreignForwardPackets(t)).toBeGreaterThan(forwarded);
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });

  it('does not flap the balancing chain for a link that flaps faster than the thresholds', async () => {
    const chain = await balanceChain();
    const since = (await monitorState())['link.isp1.since'];
    for (let i = 0; i < 4; i++) {
      await cutUpstream(t.lab, 0, 'isp1');
      await sleep(800);
      await restoreUpstream(t.lab, 0, 'isp1');
      await sleep(1_600);
      expect(await balanceChain()).toEqual(chain);
    }
    const state = await monitorState();
    expect(state['link.isp1']).toBe('up');
    expect(state['link.isp1.since']).toBe(since);
  });

  it('restarts a killed worker; a killed supervisor is an error in status until up starts it again', async () => {
    const supervisor = await runPid('monitor.pid');
    const worker = await runPid('monitor.worker.pid');
    expect(await isAlive(supervisor)).toBe(true);
    expect(await isAlive(worker)).toBe(true);
    await t.gw(['kill', '-9', String(worker)]);
    let replacement: number | null = null;
    for (let i = 0; i < 50 && !(replacement !== worker && (await isAlive(replacement))); i++) {
      await sleep(100);
      replacement = await runPid('monitor.worker.pid');
    }
    expect(replacement).not.toBe(worker);
    expect(await isAlive(replacement)).toBe(true);
    // The killed worker's probes and its `ip monitor` end by themselves (their next write has no reader).
    const orphans = async () => (await t.gw(['sh', '-c', 'ps -eo ppid=,args= | awk \'$1 == 1 && ($2 == "ping" || $2 == "ip")\' | grep -e "-I 203.0.113" -e monitor || true'])).trim();
    for (let i = 0; i < 50 && (await orphans()) !== ''; i++) await sleep(100);
    expect(await orphans()).toBe('');
    expect((await status(false)).code).toBe(0);

    await t.gw(['kill', '-9', String(supervisor)]);
    const broken = await status(false);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(new RegExp(`error: the monitor is deployed but not running \\(pid ${supervisor} is gone\\)`));
    // Its orphaned worker notices within a round and exits: no unsupervised monitor is left.
    for (let i = 0; i < 30 && (await isAlive(replacement)); i++) await sleep(100);
    expect(await isAlive(replacement)).toBe(false);

    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/service:monitor/);
    expect((await status(false)).code).toBe(0);
  });
});
