/**
 * Which backend's sections run on a gateway, and which backend the plan then uses: the shell
 * of the facts script run by a real sh with stub nft and iptables, the gateway's record in a
 * private mount of /etc/lbprov (root: a mount namespace of its own).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseBackend, firewallFactsScript } from '../../src/firewall/choice.js';
import { DONE_LINE, PREAMBLE, readSections, sectionPrelude, type SectionReader } from '../../src/remote/sections.js';
import type { FirewallBackendName, FirewallSetting } from '../../src/model/inventory.js';
import { skipNetns } from '../helpers/netns.js';

const work = mkdtempSync(join(tmpdir(), 'lbprov-choice-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Gateway {
  /** /etc/lbprov/firewall's content, or none. */
  record?: string;
  /** A first-wave install: a manifest but no record. */
  manifest?: boolean;
  /** nft installed, and whether it can talk to the kernel. */
  nft?: 'works' | 'fails';
}

let n = 0;
function runOn(gw: Gateway, setting: FirewallSetting, candidates: FirewallBackendName[] = ['nftables', 'iptables']) {
  const dir = join(work, `gw${++n}`);
  const bin = join(dir, 'bin');
  const etc = join(dir, 'etc');
  mkdirSync(bin, { recursive: true });
  mkdirSync(etc, { recursive: true });
  if (gw.record !== undefined) writeFileSync(join(etc, 'firewall'), `${gw.record}\n`);
  if (gw.manifest) writeFileSync(join(etc, 'manifest'), '/etc/lbprov/manifest\n');
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  tool('iptables-save', "printf '*mangle\\n:PREROUTING ACCEPT [0:0]\\nCOMMIT\\n'");
  tool('iptables', 'echo "iptables v1.8.9 (nf_tables)"');
  // Working: lbprov's table is not there yet (listing it fails), the kernel answers `list flowtables`.
  if (gw.nft) tool('nft', gw.nft === 'works' ? 'case "$*" in "-s list table ip lbprov") exit 1;; -v) echo "nftables v1.0.6";; esac; exit 0' : 'echo "Error: Protocol not supported" >&2; exit 1');
  const marker = 'choicemarker0001';
  const script = [PREAMBLE, `PATH=${bin}:/usr/bin:/bin`, sectionPrelude({ marker }), firewallFactsScript(setting, candidates, 'ipv4'), DONE_LINE].join('\n');
  // The record is read where a gateway keeps it: /etc seen through an overlay of this run's own,
  // in a mount namespace of its own (nothing is created in the host's /etc).
  mkdirSync(join(dir, 'upper', 'lbprov'), { recursive: true });
  mkdirSync(join(dir, 'overlay-work'));
  const mounts = `mount -t overlay lbprov-test -o lowerdir=/etc,upperdir=${dir}/upper,workdir=${dir}/overlay-work /etc && mount --bind ${etc} /etc/lbprov`;
  const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${mounts} && exec sh -s`], { input: script, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  const sections = readSections(result.stdout, marker, result.stderr);
  const read: SectionReader = { section: (name) => sections.get(name), body: (name) => sections.get(name)!.body };
  return { sections: [...sections.keys()], choice: chooseBackend(setting, candidates, read) };
}

const backendSections = (names: string[]) => names.filter((s) => s !== 'firewall');

describe.skipIf(skipNetns)('which backend a gateway gets', () => {
  it.each<[string, Gateway, FirewallSetting, FirewallBackendName, string[], RegExp]>([
    ['set: iptables on a new gateway', { nft: 'works' }, 'iptables', 'iptables', ['iptables', 'iptables-tools', 'ip-tables-matches', 'ip-tables-targets'], /firewall: iptables \(set in the inventory\)$/],
    ['set: nftables on a new gateway', {}, 'nftables', 'nftables', ['nftables', 'nftables-tools'], /firewall: nftables \(set in the inventory/],
    ['set: nftables where lbprov uses iptables (moving)', { record: 'iptables', nft: 'works' }, 'nftables', 'nftables', ['nftables', 'nftables-tools', 'iptables', 'iptables-tools', 'ip-tables-matches', 'ip-tables-targets'], /moving from iptables: its objects are removed in the same apply/],
    ['auto where lbprov uses nftables', { record: 'nftables', nft: 'works' }, 'auto', 'nftables', ['nftables', 'nftables-tools'], /auto: lbprov already uses it on this gateway/],
    ['auto on a first-wave install (a manifest, no record)', { manifest: true, nft: 'works' }, 'auto', 'iptables', ['iptables', 'iptables-tools', 'ip-tables-matches', 'ip-tables-targets'], /auto: lbprov already uses it/],
    ['auto on a new gateway where nft works', { nft: 'works' }, 'auto', 'nftables', ['nftables', 'nftables-tools'], /auto: no lbprov on this gateway yet, and nft works with the kernel's nf_tables/],
    ['auto on a new gateway where nft cannot use the kernel', { nft: 'fails' }, 'auto', 'iptables', ['nftables', 'nftables-tools', 'iptables', 'iptables-tools', 'ip-tables-matches', 'ip-tables-targets'], /nftables cannot be used: nft cannot use the kernel's nf_tables \(Error: Protocol not supported\)/],
    ['auto on a new gateway without nft', {}, 'auto', 'iptables', ['iptables', 'iptables-tools', 'ip-tables-matches', 'ip-tables-targets'], /nftables is not installed/],
    ['auto with a record that is not a backend', { record: 'pf', nft: 'works' }, 'auto', 'nftables', ['nftables', 'nftables-tools'], /auto: no lbprov on this gateway yet/],
  ])('%s', (_name, gw, setting, chosen, sections, reason) => {
    const got = runOn(gw, setting);
    expect(backendSections(got.sections)).toEqual(sections);
    expect(got.choice.chosen.name).toBe(chosen);
    expect(got.choice.reason).toMatch(reason);
  });

  it('auto only picks among the backends the playbook renders', () => {
    const got = runOn({ nft: 'works' }, 'auto', ['iptables']);
    expect(backendSections(got.sections)).toEqual(['iptables', 'iptables-tools', 'ip-tables-matches', 'ip-tables-targets']);
    expect(got.choice.chosen.name).toBe('iptables');
  });
});
