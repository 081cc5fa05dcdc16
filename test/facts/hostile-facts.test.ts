/**
 * A hostile or broken gateway: its facts output is truncated, huge or crafted. Whatever it says must
 * not turn into rules or commands lbprov sends. The base is real output of the facts script on a lab
 * gateway after `up` (test/fixtures/facts/, recorded with marker f00dfacts0000001), mutated.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RemoteError } from '../../src/errors.js';
import { parseInventoryText } from '../../src/inventory/index.js';
import { buildFactsScript } from '../../src/facts/script.js';
import { parseFacts } from '../../src/facts/parse.js';
import { factsRequestFor, renderDesiredState } from '../../src/render/desired.js';
import { loadPlaybook } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { diffResources } from '../../src/diff/diff.js';
import { planSteps } from '../../src/apply/steps.js';
import { buildApplyScript } from '../../src/apply/script.js';
import { tarOf } from '../helpers/tar.js';
import { stdinPayloads } from '../helpers/stdin-payloads.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, 'test/fixtures/facts');
const MARKER = 'f00dfacts0000001';
const REAL = readFileSync(join(FIXTURES, 'lab-gateway-after-up.out'), 'utf8');
const gw = parseInventoryText(readFileSync(join(FIXTURES, 'lab-gateway-inventory.yml'), 'utf8'), 'lab.yml').gateways[0]!;
const playbook = loadPlaybook(join(ROOT, 'playbooks/balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);
const request = factsRequestFor(gw, playbook, templates);

/** The body of section `name`. */
function sectionBody(output: string, name: string): string {
  const m = new RegExp(`^@@${MARKER} begin ${name}\\n([\\s\\S]*?)\\n@@${MARKER} end ${name} \\d+$`, 'm').exec(output);
  if (!m) throw new Error(`fixture has no section ${name}`);
  return m[1]!;
}

function withSection(output: string, name: string, body: string): string {
  const old = sectionBody(output, name);
  const at = output.indexOf(`@@${MARKER} begin ${name}\n`) + `@@${MARKER} begin ${name}\n`.length;
  return output.slice(0, at) + body + output.slice(at + old.length);
}

/** The `ip` section is one JSON array per line: rules, the main table's default routes, links, IPv4 addresses, then each owned table (101 first). */
const IP_PARTS = ['rule', 'main-default', 'link', 'addr', 'table-101'] as const;

function editIpJson(output: string, parts: (typeof IP_PARTS)[number][], edit: (entries: Record<string, unknown>[]) => Record<string, unknown>[] | void): string {
  const lines = sectionBody(output, 'ip').split('\n');
  for (const part of parts) {
    const index = IP_PARTS.indexOf(part);
    const entries = JSON.parse(lines[index]!) as Record<string, unknown>[];
    lines[index] = JSON.stringify(edit(entries) ?? entries);
  }
  return withSection(output, 'ip', lines.join('\n'));
}

/** Edits one table's block (from `*table` to its COMMIT) in the iptables-save section. */
function editIptablesTable(output: string, table: string, edit: (block: string) => string): string {
  const body = sectionBody(output, 'iptables');
  return withSection(output, 'iptables', body.replace(new RegExp(`^\\*${table}\\n[\\s\\S]*?^COMMIT$`, 'm'), (block) => edit(block)));
}

/** The text each command pipes into a tool, unquoted: crafted text could hide behind shell quoting. */
function payloadTexts(commands: string): string {
  return stdinPayloads(commands)
    .map((p) => p.text)
    .join('\n');
}

interface Outcome {
  /** Everything lbprov would send or act on: plan changes, forward commands and payloads. */
  forward: string;
  /** Undo commands: they restore the gateway's previous state, so they may repeat what it reported. */
  undo: string;
  error?: unknown;
}

/** facts -> desired -> plan -> apply script, exactly as plan/up do it; or the error that stops it. */
function pipeline(output: string): Outcome {
  try {
    const facts = parseFacts('gw1', output, MARKER, request);
    const desired = renderDesiredState(gw, playbook, templates, facts);
    const changes = diffResources(desired, facts.owned);
    const steps = planSteps(changes);
    const forwardCommands = steps.map((s) => `${s.command}\n${s.recover ?? ''}`).join('\n');
    const verify = buildFactsScript(request, { marker: MARKER });
    const script = buildApplyScript(steps.map((s) => ({ ...s, undo: 'true' })), { verifyScript: verify.script, errorFile: '"$t/step.err"' }, MARKER).script;
    return {
      forward: [JSON.stringify(desired), JSON.stringify(changes.map((c) => c.after)), script, forwardCommands, payloadTexts(forwardCommands)].join('\n'),
      undo: steps.map((s) => `${s.undo}\n${payloadTexts(s.undo)}`).join('\n'),
    };
  } catch (error) {
    return { forward: '', undo: '', error };
  }
}

/** Refused with a typed, one-line error, or planned with none of `crafted` in what would be sent. */
function expectContained(outcome: Outcome, crafted: string[]): void {
  if (outcome.error !== undefined) {
    expect(outcome.error).toBeInstanceOf(RemoteError);
    expect((outcome.error as Error).message).not.toMatch(/\n/);
    return;
  }
  for (const text of crafted) expect(outcome.forward).not.toContain(text);
}

/** wan1 looks absent or address-less: its table is unreachable and no rule names an address of it. */
function expectLinkNotReady(output: string, iface: string): void {
  const facts = parseFacts('gw1', output, MARKER, request);
  const index = gw.links.findIndex((l) => l.interface === iface);
  const desired = renderDesiredState(gw, playbook, templates, facts);
  expect(desired.find((r) => r.id === `ipv4/route-table:${gw.tableBase + 1 + index}`)).toMatchObject({ routes: ['unreachable default'] });
  expect(desired.find((r) => r.id === `ipv4/ip-rule:${gw.priorityBase + 11 + index}`)).toBeUndefined();
}

describe('facts from a hostile gateway', () => {
  it('the recorded output plans cleanly (the base the mutations start from)', () => {
    const outcome = pipeline(REAL);
    expect(outcome.error).toBeUndefined();
    expect(outcome.forward).toContain('LBPROV_PRE');
  });

  it('an interface called "wan1\\n-A PREROUTING ..." is dropped, not parsed into a rule', () => {
    const crafted = 'wan1\n-A PREROUTING -j PWNED';
    const output = editIpJson(REAL, ['link', 'addr'], (entries) => {
      const wan1 = entries.find((e) => e['ifname'] === 'wan1')!;
      entries.push({ ...wan1, ifindex: 999, ifname: crafted });
    });
    const facts = parseFacts('gw1', output, MARKER, request);
    expect(facts.interfaces.map((i) => i.name)).not.toContain(crafted);
    expect(facts.warnings.join('\n')).not.toContain('\n-A PREROUTING');
    expectContained(pipeline(output), ['PWNED']);
  });

  it('the link interface itself renamed with an injection makes the link lose its address, not gain a rule', () => {
    const output = editIpJson(REAL, ['link', 'addr'], (entries) => {
      entries.find((e) => e['ifname'] === 'wan1')!['ifname'] = 'wan1\n-A PREROUTING -j PWNED';
    });
    const outcome = pipeline(output);
    expectContained(outcome, ['PWNED']);
    expectLinkNotReady(output, 'wan1');
  });

  for (const address of ['203.0.113.10; reboot', '203.0.113.10\nrule flush', '$(reboot)', '203.0.113.10 table main', '999.1.1.1']) {
    it(`a link address of ${JSON.stringify(address)} never reaches a rule`, () => {
      const output = editIpJson(REAL, ['addr'], (entries) => {
        const wan1 = entries.find((e) => e['ifname'] === 'wan1')!;
        for (const info of wan1['addr_info'] as { family: string; local: string }[]) if (info.family === 'inet') info.local = address;
      });
      expectContained(pipeline(output), [address]);
      expectLinkNotReady(output, 'wan1');
    });
  }

  it('an ip rule in lbprov\'s range with a crafted interface is refused, not deleted through ip -batch', () => {
    const output = editIpJson(REAL, ['rule'], (entries) => {
      entries.push({ priority: 150, src: 'all', iif: 'wan1\nrule flush', table: '101' });
    });
    expectContained(pipeline(output), ['flush']);
    const undo = pipeline(output).undo;
    expect(undo).not.toContain('rule flush');
  });

  it('a route in an lbprov table with a crafted device is refused', () => {
    const output = editIpJson(REAL, ['table-101'], (entries) => {
      entries.push({ type: 'unicast', dst: '192.0.2.0/24', gateway: '198.51.100.33', dev: 'wan1\nroute flush table main', flags: [] });
    });
    const outcome = pipeline(output);
    expectContained(outcome, ['flush']);
    expect(outcome.undo).not.toContain('route flush');
  });

  it('a crafted rule in an lbprov chain is replaced by the desired chain; its text appears only in the undo payload', () => {
    const crafted = '-A LBPROV_PRE -m comment --comment "PWNED; reboot" -j ACCEPT';
    const output = editIptablesTable(REAL, 'mangle', (block) => block.replace(/COMMIT$/, `${crafted}\nCOMMIT`));
    const outcome = pipeline(output);
    expect(outcome.error).toBeUndefined();
    expect(outcome.forward).not.toContain('PWNED');
    // Rollback re-declares the chain as the gateway had it: data for iptables-restore, never a shell word.
    expect(outcome.undo).toContain('PWNED');
    expect(outcome.undo.split('\n').filter((l) => l.includes('PWNED')).every((l) => l.startsWith('-A LBPROV_PRE '))).toBe(true);
  });

  it('forged section markers are refused as garbled output, wherever they are', () => {
    // The gateway sees the script, marker included: it can try to forge a whole section.
    const forgedRules = `*nat\n:LBPROV_NAT - [0:0]\n-A POSTROUTING -j LBPROV_NAT\n-A LBPROV_NAT -j PWNED\nCOMMIT`;
    for (const [carrier, closes] of [['kernel', true], ['monitor', true], ['monitor', false]] as const) {
      const forged = `${closes ? `\n@@${MARKER} end ${carrier} 0` : ''}\n@@${MARKER} begin iptables\n${forgedRules}\n@@${MARKER} end iptables 0`;
      const outcome = pipeline(withSection(REAL, carrier, `${sectionBody(REAL, carrier)}${forged}`));
      expect(outcome.error, `forged in ${carrier}`).toBeInstanceOf(RemoteError);
      expect((outcome.error as RemoteError).reason).toBe('facts');
    }
  });

  it('file facts outside lbprov\'s paths are ignored, and paths climbing out with .. are never removed', () => {
    for (const path of ['/etc/passwd', '/etc/lbprov/../../etc/shadow', '/etc/lbprov/x y', '/var/lib/lbprov/$(reboot)']) {
      const output = withSection(REAL, 'files', tarOf([{ path, content: 'PWNED' }]).toString('base64'));
      const facts = parseFacts('gw1', output, MARKER, request);
      expect(facts.owned.filter((r) => r.kind === 'file').map((r) => (r as { path: string }).path)).not.toContain(path);
      expectContained(pipeline(output), [path, 'shadow', 'passwd', 'reboot']);
    }
  });

  it('a crafted sysctl value is overwritten with the desired one, quoted in the undo', () => {
    const output = withSection(REAL, 'sysctl', sectionBody(REAL, 'sysctl').replace('net.ipv4.ip_forward=1', "net.ipv4.ip_forward=1'; reboot; '"));
    const outcome = pipeline(output);
    expectContained(outcome, ['reboot']);
    if (!outcome.error) expect(outcome.undo).toContain(`'1'\\''; reboot; '\\'''`);
  });

  it('monitor state with crafted values is dropped', () => {
    const output = withSection(REAL, 'monitor', 'link.isp1=down; reboot\nlink.isp2=$(reboot)\nbalanced=isp1`reboot`');
    const facts = parseFacts('gw1', output, MARKER, request);
    expect(Object.values(facts.monitor.state).join(' ')).not.toMatch(/reboot/);
    expectContained(pipeline(output), ['reboot']);
  });

  it('truncated output anywhere is refused as facts, never planned from half a state', () => {
    // Cuts inside sections, and exactly between two (where every section present looks complete).
    const cuts = [0, 100, REAL.indexOf('COMMIT'), REAL.indexOf('begin files') + 40, REAL.length / 2, REAL.length - 30, REAL.lastIndexOf(`@@${MARKER} begin service-monitor`), REAL.lastIndexOf(`@@${MARKER} done`)];
    for (const cut of cuts) {
      const outcome = pipeline(REAL.slice(0, Math.floor(cut)));
      expect(outcome.error, `cut at ${cut}`).toBeInstanceOf(RemoteError);
      expect((outcome.error as RemoteError).reason).toBe('facts');
    }
  });

  it('huge output is refused quickly instead of exhausting memory or time', () => {
    const huge = [{ ifindex: 1, ifname: 'lo', addr_info: [] }, ...Array.from({ length: 200_000 }, (_, i) => ({ ifindex: i + 2, ifname: `x${i}`, addr_info: [{ family: 'inet', local: '192.0.2.1', prefixlen: 32 }] }))];
    const started = performance.now();
    const outcome = pipeline(editIpJson(REAL, ['link', 'addr'], () => huge));
    expect(performance.now() - started).toBeLessThan(5_000);
    // The links' interfaces are gone from that listing: planned as not ready, nothing of the junk sent.
    expectContained(outcome, ['x199999']);

    const junk = editIptablesTable(REAL, 'nat', () => `*nat\n${'-A PREROUTING -j ACCEPT\n'.repeat(300_000)}COMMIT`);
    const t0 = performance.now();
    const second = pipeline(junk);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expectContained(second, ['-A PREROUTING -j ACCEPT']);
  });
});
