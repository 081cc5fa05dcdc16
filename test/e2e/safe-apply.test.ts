/**
 * Issue 5 end to end: a change that locks the controller out reverts itself,
 * a failing step leaves the gateway byte-for-byte as it was, a killed
 * controller never leaves a half-applied gateway, two runs never interleave,
 * saved plans apply exactly or are refused when stale.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { sshdConnections } from '../../src/lab/index.js';
import { PACKAGE_ROOT } from '../../src/render/playbook.js';
import { CLI, skipLab, startLab, type LabRun } from './harness.js';
import { BACKENDS } from './backends.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skipLab).each(BACKENDS)('safe apply with $name', (backend) => {
  let t: LabRun;
  let inventory: string;
  const fullState = async () => ({
    firewall: await backend.fullState(t),
    rules: await t.gw(['ip', 'rule', 'show']),
    routes: await t.gw(['ip', '-4', 'route', 'show', 'table', 'all']),
    rpFilter: await t.gw(['cat', '/proc/sys/net/ipv4/conf/wan1/rp_filter', '/proc/sys/net/ipv4/conf/wan2/rp_filter']),
  });

  /** A copy of the shipped playbook and templates with `edit` applied to one template. */
  function customPlaybook(name: string, template: string, edit: (text: string) => string): string {
    const dir = join(t.work, name);
    cpSync(join(PACKAGE_ROOT, 'playbooks'), join(dir, 'playbooks'), { recursive: true });
    cpSync(join(PACKAGE_ROOT, 'templates'), join(dir, 'templates'), { recursive: true });
    const file = join(dir, 'templates', template);
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
    return join(dir, 'playbooks', 'balancer.yml');
  }

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: backend.name });
    // Short timeouts so a lost gateway is noticed in seconds, not minutes.
    const inv = parse(readFileSync(t.lab.inventoryPath, 'utf8'));
    inv.ssh = { ...inv.ssh, connect_timeout: 2, command_timeout: 4, keepalive_interval: 1 };
    inventory = join(t.work, 'inventory-short.yml');
    writeFileSync(inventory, stringify(inv));
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('a failing step rolls back: the gateway is byte-for-byte as before', async () => {
    const before = await fullState();
    // The firewall is applied after files, sysctls, routes and rules: all of those must be undone.
    const playbook = customPlaybook('bad-rule', backend.broken.template, backend.broken.edit);
    const up = await t.cli(['up', '-i', inventory, '-p', playbook, '--yes']);
    expect(up.code).toBe(1);
    expect(up.stdout + up.stderr).toMatch(backend.broken.step);
    expect(await fullState()).toEqual(before);
    expect(await t.gw(['cat', '/var/log/lbprov/audit.log'])).toMatch(/"result":"rolled-back"/);
  });

  it('a change that cuts the controller off reverts by itself within the confirm timeout', async () => {
    const before = await fullState();
    const mgmtPeer = t.lab.gateway(0).rootAddress;
    // The first rule lbprov owns now drops everything the gateway sends to the controller.
    const playbook = customPlaybook('lockout', 'ip-rules.hbs', (s) =>
      s.replace(/^priority \{\{suppressPriority\}\} .*$/m, `priority {{suppressPriority}} from all to ${mgmtPeer} blackhole`),
    );
    const started = Date.now();
    const up = await t.cli(['up', '-i', inventory, '-p', playbook, '--yes', '--confirm-timeout', '5']);
    expect(up.code).toBe(1);
    expect(up.stdout + up.stderr).toMatch(/reverted: lost connectivity after apply/);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await fullState()).toEqual(before);
    // A later plan with the real playbook sees the same state as before the attempt.
    const plan = await t.cli(['plan', '-i', inventory, '--json']);
    expect(plan.code).toBe(2);
    expect(JSON.parse(plan.stdout).hosts[0].changes.map((c: { action: string; id: string }) => `${c.action} ${c.id}`)).toContain('create ipv4/ip-rule:100');
    expect(await t.gw(['cat', '/var/log/lbprov/audit.log'])).toMatch(/"result":"reverted"/);
  });

  it('a controller killed before, during or after the apply leaves the gateway untouched or reverted, never half-applied', async () => {
    const before = await fullState();
    const txns = async () => (await t.gw(['sh', '-c', 'ls /var/lib/lbprov/txn 2>/dev/null || true'])).split('\n').filter(Boolean);
    const resultOf = async (run: string) => (await t.gw(['sh', '-c', `cat /var/lib/lbprov/txn/${run}/result 2>/dev/null || true`])).trim();
    /** Polls the gateway until `ready(newRun)` holds, then kills the controller. */
    const killWhen = async (ready: (run: string | undefined) => Promise<boolean>) => {
      const known = new Set(await txns());
      const child = spawn(process.execPath, [CLI, 'up', '-i', inventory, '--yes', '--confirm-timeout', '2'], { stdio: 'ignore' });
      const exited = new Promise((r) => child.once('exit', r));
      const deadline = Date.now() + 20_000;
      let run: string | undefined;
      while (Date.now() < deadline && child.exitCode === null) {
        run = (await txns()).find((r) => !known.has(r));
        if (await ready(run)) break;
        await sleep(10);
      }
      child.kill('SIGKILL');
      await exited;
      return run;
    };
    // Before anything reached the gateway's transaction: nothing may change.
    await killWhen(async () => true);
    expect(await fullState(), 'killed at once').toEqual(before);
    // While the apply runs (its folder exists) and once it waits for the confirm.
    for (const [what, ready] of [
      ['during the apply', async (run: string | undefined) => run !== undefined],
      ['waiting for the confirm', async (run: string | undefined) => run !== undefined && (await resultOf(run)) === 'pending'],
    ] as const) {
      const run = await killWhen(ready);
      expect(run, what).toBeDefined();
      await sleep(3_500);
      expect(await resultOf(run!), what).toBe('reverted');
      expect(await fullState(), what).toEqual(before);
    }
  });

  it('two concurrent ups on one gateway: one applies, the other waits or fails cleanly naming the holder', async () => {
    const a = t.cli(['up', '-i', inventory, '--yes', '--confirm-timeout', '5', '--json']);
    await sleep(100);
    const b = t.cli(['up', '-i', inventory, '--yes', '--lock-timeout', '0', '--json']);
    const [ra, rb] = await Promise.all([a, b]);
    const reports = [ra, rb].map((r) => JSON.parse(r.stdout));
    const statuses = reports.map((r) => r.results[0]);
    expect(statuses.filter((s) => s.status === 'changed')).toHaveLength(1);
    const other = statuses.find((s) => s.status !== 'changed');
    if (other.status === 'failed') expect(other.error.message).toMatch(/locked by another lbprov run \(controller \S+ pid \d+, since \d{4}-/);
    else expect(other.status).toBe('ok');
    expect((await t.cli(['plan', '-i', inventory])).code).toBe(0);
    const runs = new Set(reports.map((r) => r.run));
    const audit = (await t.gw(['cat', '/var/log/lbprov/audit.log'])).trim().split('\n').map((l) => JSON.parse(l)).filter((r) => runs.has(r.record.run));
    expect(audit.filter((r) => r.result === 'applied')).toHaveLength(1);
    expect(audit.filter((r) => r.result === 'confirmed')).toHaveLength(1);
  });

  // These delete the fwmark rules (101, 102): the source rules (111, 112) carry the monitor's probes,
  // and a monitor that saw a link go down would change the state the tests compare.
  it('up --plan applies a saved plan exactly, and refuses it after a hand edit', async () => {
    expect((await t.cli(['up', '-i', inventory, '--yes'])).code).toBe(0);
    await t.gw(['ip', 'rule', 'del', 'priority', '102']);
    const planFile = join(t.work, 'reviewed.json');
    const plan = await t.cli(['plan', '-i', inventory, '--out', planFile]);
    expect(plan.code).toBe(2);
    const up = await t.cli(['up', '-i', inventory, '--plan', planFile, '--yes', '--json']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(JSON.parse(up.stdout).results[0].plan.changes.map((c: { id: string }) => c.id)).toEqual(['ipv4/ip-rule:102']);
    expect((await t.cli(['plan', '-i', inventory])).code).toBe(0);

    await t.gw(['ip', 'rule', 'del', 'priority', '102']);
    const stale = join(t.work, 'stale.json');
    expect((await t.cli(['plan', '-i', inventory, '--out', stale])).code).toBe(2);
    await t.gw(['ip', 'rule', 'del', 'priority', '101']);
    const before = await fullState();
    const refused = await t.cli(['up', '-i', inventory, '--plan', stale, '--yes']);
    expect(refused.code).toBe(1);
    expect(refused.stdout + refused.stderr).toMatch(/refusing the saved plan: state changed since the plan was made: ipv4\/ip-rule:101/);
    expect(await fullState()).toEqual(before);
  });

  it('up --plan needs no -i: the plan names its inventory and playbook, and a different -i is refused', async () => {
    expect((await t.cli(['up', '-i', inventory, '--yes'])).code).toBe(0);
    await t.gw(['ip', 'rule', 'del', 'priority', '102']);
    const planFile = join(t.work, 'self-contained.json');
    expect((await t.cli(['plan', '-i', inventory, '--out', planFile])).code).toBe(2);
    const saved = JSON.parse(readFileSync(planFile, 'utf8'));
    expect(saved).toMatchObject({ version: 2, inventory: { path: inventory, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }, playbook: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    const other = join(t.work, 'other.yml');
    writeFileSync(other, readFileSync(inventory, 'utf8'));
    const wrong = await t.cli(['up', '-i', other, '--plan', planFile, '--yes']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/the plan was made from .*inventory-short\.yml, not .*other\.yml/);
    const up = await t.cli(['up', '--plan', planFile, '--yes', '--json']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(JSON.parse(up.stdout).results[0].plan.changes.map((c: { id: string }) => c.id)).toEqual(['ipv4/ip-rule:102']);
    expect((await t.cli(['plan', '-i', inventory])).code).toBe(0);
  });

  it('refuses a tampered plan file before any connection: a shell word in a rule, a path outside lbprov, an unknown kind', async () => {
    expect((await t.cli(['up', '-i', inventory, '--yes'])).code).toBe(0);
    await t.gw(['ip', 'rule', 'del', 'priority', '102']);
    await t.gw(backend.flushPre);
    const planFile = join(t.work, 'to-tamper.json');
    expect((await t.cli(['plan', '-i', inventory, '--out', planFile])).code).toBe(2);
    const original = JSON.parse(readFileSync(planFile, 'utf8'));
    const changeOf = (plan: typeof original, id: string) => plan.hosts[0].changes.find((c: { id: string }) => c.id === id);
    const tampered: [string, (plan: typeof original) => void, RegExp][] = [
      ['rule', (p) => changeOf(p, backend.ids.pre).after.rules.push(backend.tamper.rule), backend.tamper.refusal],
      ['path', (p) => {
        const c = changeOf(p, 'ipv4/ip-rule:102');
        Object.assign(c, { kind: 'file', id: 'file:/etc/shadow', after: { kind: 'file', id: 'file:/etc/shadow', path: '/etc/shadow', mode: '0644', content: 'root::0:0::::\n' } });
      }, /a path lbprov owns/],
      ['kind', (p) => Object.assign(changeOf(p, 'ipv4/ip-rule:102'), { kind: 'exec' }), /a resource kind lbprov knows/],
    ];
    const before = await fullState();
    const connections = sshdConnections(t.lab.gateway(0));
    for (const [name, edit, why] of tampered) {
      const plan = structuredClone(original);
      edit(plan);
      const file = join(t.work, `tampered-${name}.json`);
      writeFileSync(file, JSON.stringify(plan));
      const up = await t.cli(['up', '--plan', file, '--yes']);
      expect(up.code, name).toBe(1);
      expect(up.stderr, name).toMatch(why);
      expect(up.stderr, name).toContain(`${file}: hosts.0.changes`);
    }
    expect(sshdConnections(t.lab.gateway(0))).toBe(connections);
    expect(await fullState()).toEqual(before);
    expect((await t.cli(['up', '-i', inventory, '--yes'])).code).toBe(0);
  });

  it('every apply leaves an audit record on the gateway and a run log line on the controller', async () => {
    await t.gw(['ip', 'rule', 'del', 'priority', '101']);
    await t.gw(['ip', 'rule', 'del', 'priority', '102']);
    const runLog = join(t.work, 'runs.jsonl');
    const up = await t.cli(['up', '-i', inventory, '--yes'], { LBPROV_RUN_LOG: runLog });
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const runs = readFileSync(runLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(runs.at(-1)).toMatchObject({ command: 'up', results: [{ gateway: 'gw1', status: 'changed' }] });
    const audit = (await t.gw(['cat', '/var/log/lbprov/audit.log'])).trim().split('\n').map((l) => JSON.parse(l));
    const last = audit.filter((r) => r.record.run === runs.at(-1).run);
    expect(last.map((r) => r.result)).toEqual(['applied', 'confirmed']);
    expect(last[0].record.changes).toEqual(expect.arrayContaining(['create ipv4/ip-rule:101', 'create ipv4/ip-rule:102']));
  });
});
