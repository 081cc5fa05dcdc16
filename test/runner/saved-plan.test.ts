/**
 * Saved plans are untrusted input: read with the strict resource schemas, every change checked
 * coherent, refused with file and key. The commands are rebuilt from the changes, never read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSavedPlan, checkPlanSources } from '../../src/runner/saved-plan.js';
import { diffResources } from '../../src/diff/diff.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { renderDesiredState } from '../../src/render/desired.js';
import type { Plan } from '../../src/model/plan.js';
import { InputError } from '../../src/errors.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';

const work = mkdtempSync(join(tmpdir(), 'lbprov-saved-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const gw = gatewaySpec();
const changes = diffResources(renderDesiredState(gw, playbook, loadTemplateSet(playbook.templatesDir), factsFor(gw)), []);
const source = (path: string) => ({ path, sha256: 'a'.repeat(64) });
const plan: Plan = { version: 2, createdAt: '2026-12-01T00:00:00Z', inventory: source('/srv/inv.yml'), playbook: source('/srv/pb.yml'), hosts: [{ gateway: gw.name, fingerprint: 'b'.repeat(64), notes: [], changes }] };

let n = 0;
function saved(data: unknown): string {
  const file = join(work, `plan-${++n}.json`);
  writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data));
  return file;
}

/** A copy of the plan with one change (found by id) edited. */
function edited(id: string, edit: (change: Record<string, unknown>) => void): unknown {
  const copy = structuredClone(plan) as unknown as { hosts: { changes: Record<string, unknown>[] }[] };
  const change = copy.hosts[0]!.changes.find((c) => c.id === id);
  if (!change) throw new Error(`no change ${id}`);
  edit(change);
  return copy;
}

const refusal = (data: unknown): string => {
  const file = saved(data);
  try {
    loadSavedPlan(file);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as Error).message.replace(file, 'FILE');
  }
  throw new Error('the plan was accepted');
};

describe('loadSavedPlan', () => {
  it('reads back a plan as the planner wrote it, every change typed and coherent', () => {
    expect(loadSavedPlan(saved(plan))).toEqual(plan);
  });

  it.each<[string, unknown, RegExp]>([
    ['a rule with a shell word break', edited('ipv4/iptables-chain:mangle:LBPROV_PRE', (c) => (c.after as { rules: string[] }).rules.push('-j ACCEPT; reboot')), /hosts\.0\.changes\.\d+: refusing the saved plan: iptables-chain .*rules\.\d+: iptables rule contains a shell metacharacter/],
    ['a rule not in canonical form', edited('ipv4/iptables-chain:mangle:LBPROV_PRE', (c) => (c.after as { rules: string[] }).rules.push('-j MARK --set-mark 1')), /is not in canonical form/],
    ['a file outside what lbprov owns', edited('file:/etc/lbprov/monitor.sh', (c) => Object.assign(c, { id: 'file:/etc/shadow', after: { ...(c.after as object), id: 'file:/etc/shadow', path: '/etc/shadow' } })), /path: a path lbprov owns/],
    ['a file climbing out with ..', edited('file:/etc/lbprov/monitor.sh', (c) => Object.assign(c, { id: 'file:/etc/lbprov/../shadow', after: { ...(c.after as object), id: 'file:/etc/lbprov/../shadow', path: '/etc/lbprov/../shadow' } })), /path: a path lbprov owns/],
    ['an unknown kind', edited('ipv4/ip-rule:111', (c) => Object.assign(c, { kind: 'exec' })), /changes\.\d+\.kind: a resource kind lbprov knows/],
    ['an unknown kind inside a side', edited('ipv4/ip-rule:111', (c) => Object.assign(c.after as object, { kind: 'exec' })), /unknown resource kind "exec"/],
    ['a side of another kind than the change', edited('ipv4/ip-rule:111', (c) => Object.assign(c, { kind: 'sysctl' })), /before\/after are not sysctl resources/],
    ['an id that names another object', edited('ipv4/ip-rule:111', (c) => Object.assign(c.after as object, { id: 'ipv4/ip-rule:999' })), /before\/after are not ip-rule resources with that id|does not name its ip-rule/],
    ['a delete with an after', edited('ipv4/ip-rule:111', (c) => Object.assign(c, { action: 'delete' })), /as the action needs/],
    ['an extra field', edited('ipv4/ip-rule:111', (c) => Object.assign(c.after as object, { command: 'reboot' })), /Unrecognized key/],
    ['a first-version plan', { ...plan, version: 1 }, /version 2/],
    ['not JSON', '{"version": 2,', /cannot read the saved plan/],
  ])('refuses %s, naming the file and the place', (_name, data, why) => {
    const message = refusal(data);
    expect(message).toMatch(/^FILE: /);
    expect(message).toMatch(why);
  });

  it('refuses a plan whose inventory or playbook moved or changed', () => {
    const loaded = loadSavedPlan(saved(plan));
    expect(() => checkPlanSources(loaded, 'p.json', { inventory: source('/srv/inv.yml'), playbook: source('/srv/pb.yml') })).not.toThrow();
    expect(() => checkPlanSources(loaded, 'p.json', { inventory: source('/srv/other.yml'), playbook: source('/srv/pb.yml') })).toThrow(/the plan was made from \/srv\/inv\.yml, not \/srv\/other\.yml/);
    expect(() => checkPlanSources(loaded, 'p.json', { inventory: source('/srv/inv.yml'), playbook: { path: '/srv/pb.yml', sha256: 'c'.repeat(64) } })).toThrow(/\/srv\/pb\.yml changed since the plan was made/);
  });
});
