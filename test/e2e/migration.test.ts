/**
 * Changing `firewall:` on a running gateway is one `up`: the plan shows the old backend's objects
 * going and the new one's coming, the apply adds the new before it removes the old (one
 * transaction that rolls back as a whole), and connections keep working through the switch (the
 * conntrack marks are the same under both). And back. Afterwards only the chosen backend's facts
 * sections run on the gateway.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { countConnections, startLongConnection, type LongConnection } from '../../src/lab/index.js';
import { buildFactsScript } from '../../src/facts/script.js';
import { factsRequestFor } from '../../src/render/desired.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { loadInventory } from '../../src/inventory/index.js';
import { skipLab, startLab, type LabRun } from './harness.js';
import { addForeignRules, IPTABLES, NFTABLES } from './backends.js';

describe.skipIf(skipLab)('migration between firewall backends on a running gateway', () => {
  let t: LabRun;
  let foreign: string;
  const kept: LongConnection[] = [];
  const setFirewall = (name: string) => {
    const doc = parseDocument(readFileSync(t.lab.inventoryPath, 'utf8'));
    doc.setIn(['defaults', 'firewall'], name);
    writeFileSync(t.lab.inventoryPath, doc.toString({ lineWidth: 0 }));
  };
  const planChanges = async () => (JSON.parse((await t.cli(['plan', '-i', t.lab.inventoryPath, '--json'])).stdout).hosts[0].changes as { action: string; id: string }[]).map((c) => `${c.action} ${c.id}`);
  /** The sections the facts script of this gateway prints, run as `plan` runs it. */
  const factsSections = async () => {
    const gw = loadInventory(t.lab.inventoryPath).gateways[0]!;
    const playbook = loadPlaybook(`${PACKAGE_ROOT}/playbooks/balancer.yml`);
    const { script, marker } = buildFactsScript(factsRequestFor(gw, playbook, loadTemplateSet(playbook.templatesDir)));
    const out = (await t.lab.execOnGateway(0, ['sh', '-s'], { input: script })).stdout;
    return [...out.matchAll(new RegExp(`^@@${marker} begin (\\S+)$`, 'gm'))].map((m) => m[1]);
  };
  /** Both engines' view of lbprov: iptables chains and the nft table. */
  const lbprovObjects = async () => ({ iptables: await IPTABLES.lbprovState(t), nftables: await NFTABLES.lbprovState(t) });

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1], firewall: 'iptables' });
    await addForeignRules(t);
    foreign = await NFTABLES.foreignState(t);
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all(kept.map((c) => c.close()));
    await t?.destroy();
  });

  it('runs only the iptables sections on an iptables gateway', async () => {
    const sections = await factsSections();
    expect(sections).toContain('iptables');
    expect(sections.filter((s) => s!.startsWith('nftables'))).toEqual([]);
  });

  it('iptables -> nftables: one up, the plan shows both sides, connections survive, only nft is left', async () => {
    for (let i = 0; i < 4; i++) kept.push(await startLongConnection(t.lab, 0));
    expect(new Set(kept.map((c) => c.link)).size).toBe(2);
    setFirewall('nftables');
    const changes = await planChanges();
    expect(changes).toEqual(expect.arrayContaining(['delete ipv4/iptables-chain:mangle:LBPROV_PRE', 'delete ipv4/iptables-jump:mangle:PREROUTING:LBPROV_PRE', 'create ipv4/nft-table:lbprov', 'create ipv4/nft-chain:prerouting', 'update file:/etc/lbprov/firewall']));
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.stdout).toMatch(/firewall: nftables \(set in the inventory\); moving from iptables: its objects are removed in the same apply/);

    // New connections keep flowing while the switch happens.
    const during = countConnections(t.lab, 0, 400);
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect((await during).errors).toEqual({});
    for (const c of kept) expect(await c.check(), `long connection on ${c.link}`).toBe(true);

    const objects = await lbprovObjects();
    expect(objects.iptables).toBe('');
    expect(objects.nftables).toContain('table ip lbprov {');
    expect((await countConnections(t.lab, 0, 400)).byLink).toEqual({ isp1: 300, isp2: 100 });
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
    expect(await NFTABLES.foreignState(t)).toEqual(foreign);
    const sections = await factsSections();
    expect(sections).toEqual(expect.arrayContaining(['nftables', 'nftables-tools']));
    expect(sections).not.toContain('iptables');
  });

  it('a failure part-way rolls the whole switch back: the old backend stays as it was', async () => {
    // A foreign rule that jumps into lbprov's chain blocks deleting that chain.
    setFirewall('iptables');
    expect((await t.cli(['up', '-i', t.lab.inventoryPath, '--yes'])).code).toBe(0);
    await t.gw(['iptables', '-t', 'mangle', '-N', 'FOREIGN_HOOK']);
    await t.gw(['iptables', '-t', 'mangle', '-A', 'FOREIGN_HOOK', '-j', 'LBPROV_PRE']);
    const before = await lbprovObjects();
    setFirewall('nftables');
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code).toBe(1);
    expect(up.stdout + up.stderr).toMatch(/apply failed at step \d+ \(iptables mangle[^)]*\); rolled back/);
    expect(await lbprovObjects()).toEqual(before);
    expect((await countConnections(t.lab, 0, 400)).byLink).toEqual({ isp1: 300, isp2: 100 });
    await t.gw(['iptables', '-t', 'mangle', '-F', 'FOREIGN_HOOK']);
    await t.gw(['iptables', '-t', 'mangle', '-X', 'FOREIGN_HOOK']);
  });

  it('nftables -> iptables and back again keeps the split and the long connections', async () => {
    for (const name of ['nftables', 'iptables']) {
      setFirewall(name);
      const during = countConnections(t.lab, 0, 200);
      const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
      expect(up.code, up.stdout + up.stderr).toBe(0);
      expect((await during).errors).toEqual({});
      expect((await countConnections(t.lab, 0, 400)).byLink).toEqual({ isp1: 300, isp2: 100 });
      for (const c of kept) expect(await c.check(), `long connection on ${c.link} after moving to ${name}`).toBe(true);
      expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
    }
    expect((await lbprovObjects()).nftables).toBe('');
  });
});
