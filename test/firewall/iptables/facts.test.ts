/**
 * The iptables facts section keeps only lbprov's lines of iptables-save: what lbprov reads from
 * them (its chains, its jumps, foreign rules that refer to its chains, warnings) is exactly what
 * it reads from the whole dump, on a gateway with a 20,000-rule blocklist in filter and a big
 * foreign chain in mangle itself, with both iptables variants.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { iptablesFactsSections } from '../../../src/firewall/iptables/facts.js';
import { ownedIptablesResources, parseIptablesSave } from '../../../src/firewall/iptables/index.js';
import { skipNetns, withNetns } from '../../helpers/netns.js';

const dir = fileURLToPath(new URL('../../fixtures/iptables/', import.meta.url));
const fixture = (name: string) => readFileSync(dir + name, 'utf8');
const section = iptablesFactsSections('ipv4').find(([name]) => name === 'iptables')![1];
const work = mkdtempSync(join(tmpdir(), 'lbprov-ipt-facts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const owned = (save: string) => {
  const parsed = parseIptablesSave(save);
  return { ...ownedIptablesResources(parsed, 'ipv4'), saveWarnings: parsed.warnings };
};

/** A folder whose iptables-save runs `body`. */
function stubSave(name: string, body: string): string {
  const bin = join(work, name);
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(join(bin, 'iptables-save'), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, 'iptables-save'), 0o755);
  return bin;
}

const runSection = (pathFirst: string, run: (argv: string[]) => { status: number | null; stdout: string } = local) =>
  run(['sh', '-c', `PATH=${pathFirst}:$PATH; ${section}`]);

function local(argv: string[]) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout };
}

const drops = (chain: string, n: number) => Array.from({ length: n }, (_, i) => `-A ${chain} -s 198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 -j DROP`);

/** Foreign state around lbprov's: a blocklist in filter, one in mangle, foreign rules referring to lbprov chains, a stray LBPROV_ chain in filter. */
function foreignLoad(blocklist: number): string {
  return [
    '*filter',
    ':f2b-blocklist - [0:0]',
    ':LBPROV_STRAY - [0:0]',
    ...drops('f2b-blocklist', blocklist),
    '-A INPUT -j f2b-blocklist',
    'COMMIT',
    '*mangle',
    ':blocklist - [0:0]',
    ':FOREIGN - [0:0]',
    ...drops('blocklist', blocklist / 4),
    '-A blocklist -m comment --comment "not a -j LBPROV_PRE" -j RETURN',
    '-A PREROUTING -j blocklist',
    '-A FOREIGN -p tcp -j LBPROV_BALANCE',
    '-A PREROUTING -p udp -g LBPROV_PRE',
    'COMMIT',
    '',
  ].join('\n');
}

/** A raw table none of the recorded dumps has: a blocklist, and a stray LBPROV_ chain a foreign rule jumps to. */
const rawTable = ['*raw', ':PREROUTING ACCEPT [0:0]', ':blocklist - [0:0]', ':LBPROV_STRAY - [0:0]', '-A PREROUTING -j blocklist', ...drops('blocklist', 200), '-A blocklist -j LBPROV_STRAY', 'COMMIT', ''].join('\n');

describe('the iptables facts section', () => {
  it.each(['nft-gateway.save', 'legacy-gateway.save', 'nft-with-legacy-merged.save'])('%s: lbprov reads the same from its lines as from the whole dump', (file) => {
    const full = fixture(file) + rawTable;
    const bin = stubSave(file, `cat <<'EOF'\n${full}EOF`);
    const r = runSection(bin);
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeLessThan(full.length / 2);
    expect(owned(r.stdout)).toEqual(owned(full));
  });

  it("exits with iptables-save's status, and a cut-short dump stays cut short", () => {
    const r = runSection(stubSave('fails', "printf '*mangle\\n:PREROUTING ACCEPT [0:0]\\n-A PREROUTING -j LBPROV_PRE\\n'; exit 4"));
    expect(r.status).toBe(4);
    expect(() => parseIptablesSave(r.stdout)).toThrow(/no COMMIT: output truncated/);
    expect(runSection(stubSave('missing', 'exit 127')).status).toBe(127);
  });
});

describe.skipIf(skipNetns)('the iptables facts section on the real iptables, 20,000 foreign rules', () => {
  const rules = [fixture('foreign.rules'), fixture('measured-0xf0000000.rules'), fixture('drift.rules'), foreignLoad(20_000)];

  it.each(['nft', 'legacy'])('iptables-%s: owned chains, jumps and foreign references are those of the whole dump', async (variant) => {
    const bin = join(work, `real-${variant}`);
    spawnSync('mkdir', ['-p', bin]);
    symlinkSync(`/usr/sbin/iptables-${variant}-save`, join(bin, 'iptables-save'));
    await withNetns((ns) => {
      for (const text of rules) ns.run([`iptables-${variant}-restore`, '-w', '10', '--noflush'], text);
      const full = ns.run([`iptables-${variant}-save`]);
      const r = runSection(bin, (argv) => ns.attempt(argv));
      expect(r.status).toBe(0);
      const fromSection = owned(r.stdout);
      expect(fromSection).toEqual(owned(full));
      expect(fromSection.chains.map((c) => c.id)).toEqual([
        'ipv4/iptables-chain:mangle:LBPROV_BALANCE',
        'ipv4/iptables-chain:mangle:LBPROV_OUT',
        'ipv4/iptables-chain:mangle:LBPROV_PRE',
        'ipv4/iptables-chain:nat:LBPROV_NAT',
      ]);
      expect(fromSection.foreignReferences).toEqual([
        { table: 'mangle', chain: 'PREROUTING', rule: '-p udp -g LBPROV_PRE' },
        { table: 'mangle', chain: 'FOREIGN', rule: '-p tcp -j LBPROV_BALANCE' },
      ]);
      expect(fromSection.warnings).toEqual(['chain LBPROV_STRAY in table filter looks like lbprov\'s but lbprov manages only mangle and nat']);
      expect(r.stdout.length).toBeLessThan(20_000);
    });
  });
});
