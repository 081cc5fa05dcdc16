/**
 * Issue 7 end to end on 10 lab gateways: waves stop exactly where --serial/--max-fail say, with
 * gateways made unreachable (management link down, sshd stopped) and one whose apply fails (a
 * read-only /etc/iproute2/rt_tables.d in its private mount namespace); the grouped fleet plan,
 * the recap and the JSON report.
 *
 * The first two tests drive the rollout executor directly; the CLI tests use
 * `up --serial/--max-fail` and the grouped `plan` output as wired in src/cli.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import type { GatewaySpec } from '../../src/model/inventory.js';
import { loadCommon } from '../../src/cli/context.js';
import { balancerPlanner, type RunContext } from '../../src/runner/gateway.js';
import { planAndApply, runFleet } from '../../src/runner/loop.js';
import { parseMaxFail, parseSerial, runRollout } from '../../src/runner/rollout.js';
import type { HostResult } from '../../src/runner/fleet.js';
import { buildJsonReport, formatFleetPlan, formatRolloutRecap } from '../../src/report/fleet-plan.js';
import { plainColours } from '../../src/report/plan-text.js';
import { run } from '../../src/lab/run.js';
import { skipLab, startLab, type LabRun } from './harness.js';

describe.skipIf(skipLab)('rollout: waves, max-fail, fleet plan and reports on 10 gateways', () => {
  let t: LabRun;
  let ctx: RunContext;
  let gateways: GatewaySpec[];
  const hasLbprovChains = async (gw: string) => (await t.lab.execOnGateway(gw, ['iptables-save', '-t', 'mangle'])).stdout.includes(':LBPROV_BALANCE');

  beforeAll(async () => {
    // iptables: the assertions below read its chains (the rollout itself does not depend on the backend).
    t = await startLab({ gateways: 10, lanClients: 'none', firewall: 'iptables' });
    ({ ctx, gateways } = loadCommon({ inventory: t.lab.inventoryPath, forks: '20' }));
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('real plans of 10 gateways differing only in addresses and names read as one group', async () => {
    const plans = (await runFleet(gateways, ctx, 20, { lock: false, planner: balancerPlanner(ctx) })).map((o) => o.result.plan!);
    expect(new Set(plans.map((p) => JSON.stringify(p.changes))).size).toBe(10);
    const text = formatFleetPlan(plans, plainColours);
    expect(text).toMatch(/^10 gateways: gw1\.\.gw10\n {2}\(addresses and names differ per gateway; shown for gw1\)$/m);
    expect(text.match(/\+ ipv4\/iptables-chain:mangle:LBPROV_BALANCE/g)).toHaveLength(1);
    expect(text).toContain('10 gateway(s) planned: 10 with changes, 0 without');
  });

  it('stops after wave 2 when 2 of its 5 gateways fail, and never touches waves after it', async () => {
    // gw3: management link down; gw8: its sshd stopped; gw5: its apply cannot write a file.
    await run(['ip', 'link', 'set', t.lab.gateway('gw3').rootLink, 'down']);
    await t.lab.execOnGateway('gw5', ['sh', '-c', 'mkdir -p /etc/iproute2/rt_tables.d && mount -t tmpfs -o ro lbprov-e2e /etc/iproute2/rt_tables.d']);
    const sshd8 = t.lab.state.processes.find((p) => p.role === 'sshd gw8')!;
    process.kill(sshd8.pid, 'SIGTERM');
    for (let i = 0; i < 100 && existsSync(`/proc/${sshd8.pid}`); i++) await sleep(20);

    const started: string[] = [];
    const rollout = await runRollout(
      gateways,
      { serial: parseSerial('1,50%,100%'), maxFail: parseMaxFail('10%'), forks: 20 },
      (gw): Promise<HostResult> => planAndApply(gw, ctx, { lock: false, planner: balancerPlanner(ctx), apply: { options: { confirmTimeoutS: null } } }),
      (e) => {
        if (e.type === 'host-start') started.push(e.gateway);
      },
    );
    expect(started.sort()).toEqual(['gw1', 'gw2', 'gw3', 'gw4', 'gw5', 'gw6']);
    expect(Object.fromEntries(rollout.hosts.map((h) => [h.gateway, h.status]))).toEqual({
      gw1: 'changed', gw2: 'changed', gw3: 'unreachable', gw4: 'changed', gw5: 'failed', gw6: 'changed',
      gw7: 'not-started', gw8: 'not-started', gw9: 'not-started', gw10: 'not-started',
    });
    expect(rollout.hosts.find((h) => h.gateway === 'gw5')!.error).toMatchObject({ reason: 'apply' });
    expect(rollout.stopped).toMatchObject({ afterWave: 2, reason: 'max-fail' });
    expect(await hasLbprovChains('gw2')).toBe(true);
    // gw5 rolled back; gw7 was never started.
    expect(await hasLbprovChains('gw5')).toBe(false);
    expect(await hasLbprovChains('gw7')).toBe(false);

    const report = buildJsonReport(rollout.hosts, rollout);
    expect(report.summary).toEqual({ ok: 0, changed: 4, failed: 1, unreachable: 1, notStarted: 4 });
    expect(formatRolloutRecap(rollout, plainColours)).toContain('stopped after wave 2/3: 2 of 5 gateway(s) failed (more than 10% failed); 4 gateway(s) not started');
  });

  // From here on: the CLI as wired by the lead (plan prints the grouped fleet plan; up takes
  // --serial/--max-fail and prints buildJsonReport with --json).
  it('CLI plan groups gateways by identical diff', async () => {
    const result = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(result.code, result.stderr).toBe(1); // gw3 and gw8 are unreachable
    // Notes (the failover mechanism) come before "no changes".
    expect(result.stdout).toMatch(/^4 gateways: gw1, gw2, gw4, gw6\n(?: {2}# .*\n)* {2}no changes$/m);
    expect(result.stdout).toMatch(/^4 gateways: gw5, gw7, gw9, gw10\n/m);
    expect(result.stdout.match(/\+ ipv4\/iptables-chain:mangle:LBPROV_BALANCE/g)).toHaveLength(1);
    expect(result.stdout).toMatch(/^gw3\s+unreachable/m);
  });

  it('CLI up --serial 1,50%,100% --max-fail 10% --json stops after wave 2 and reports every gateway', async () => {
    const result = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes', '--serial', '1,50%,100%', '--max-fail', '10%', '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.summary).toEqual({ ok: 4, changed: 0, failed: 1, unreachable: 1, notStarted: 4 });
    expect(report.stopped).toMatchObject({ afterWave: 2, reason: 'max-fail' });
    expect(report.waves.map((w: { gateways: string[]; failed: number }) => [w.gateways.length, w.failed])).toEqual([
      [1, 0],
      [5, 2],
    ]);
    expect(Object.fromEntries(report.hosts.map((h: { gateway: string; status: string; wave: number }) => [h.gateway, `${h.status}@${h.wave}`]))).toEqual({
      gw1: 'ok@1', gw2: 'ok@2', gw3: 'unreachable@2', gw4: 'ok@2', gw5: 'failed@2', gw6: 'ok@2',
      gw7: 'not-started@3', gw8: 'not-started@3', gw9: 'not-started@3', gw10: 'not-started@3',
    });
    expect(await hasLbprovChains('gw7')).toBe(false);
  });

  it('CLI up with --max-fail 50% goes through every wave; recap and progress lines in plain text', async () => {
    const result = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes', '--serial', '1,50%,100%', '--max-fail', '50%']);
    expect(result.code).toBe(1);
    for (const [gw, status] of [['gw1', 'ok'], ['gw3', 'unreachable'], ['gw5', 'failed'], ['gw7', 'changed'], ['gw8', 'unreachable'], ['gw10', 'changed']]) {
      expect(result.stdout).toMatch(new RegExp(`^${gw}\\s+${status}`, 'm'));
    }
    expect(result.stdout).toContain('total 10: ok=4 changed=3 failed=1 unreachable=2 not-started=0');
    expect(result.stdout).toContain('wave 3/3: 4 gateway(s), 1 failed');
    expect(result.stderr).toContain('wave 3/3: 4 gateway(s)');
    expect(result.stderr).toMatch(/^\[\d+\/10\] gw7 changed/m);
    expect(result.stderr).not.toMatch(/\u001b/);
    expect(await hasLbprovChains('gw7')).toBe(true);
  });
});
