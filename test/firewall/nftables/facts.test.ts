/**
 * The nftables facts sections on the real nft beside a foreign table of 20,000 rules: they read
 * lbprov's table only, and say nft works before lbprov has a table, without listing the foreign one.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { nftablesBackend } from '../../../src/firewall/nftables/index.js';
import { readSections, sectionCall, sectionPrelude, DONE_LINE, PREAMBLE, type SectionReader } from '../../../src/remote/sections.js';
import { diffResources } from '../../../src/diff/diff.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../../src/render/playbook.js';
import { loadTemplateSet } from '../../../src/render/templates.js';
import { renderDesiredState } from '../../../src/render/desired.js';
import { factsFor, gatewaySpec } from '../../helpers/gateway.js';
import { skipNetns, withNetns, type Netns } from '../../helpers/netns.js';
import { stdinPayloads } from '../../helpers/stdin-payloads.js';

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);
const MARKER = 'nftfacts00000001';

function readFacts(ns: Netns): { read: SectionReader; body: string } {
  const script = [PREAMBLE, sectionPrelude({ marker: MARKER }), ...nftablesBackend.factsSections('ipv4').map(([name, cmd]) => sectionCall(name, cmd)), DONE_LINE].join('\n');
  const sections = readSections(ns.run(['sh', '-s'], script), MARKER);
  return { read: { section: (name) => sections.get(name), body: (name) => sections.get(name)!.body }, body: sections.get('nftables')!.body };
}

describe.skipIf(skipNetns)('the nftables facts sections on the real nft, 20,000 foreign rules', () => {
  it("reads lbprov's table and nothing of the foreign one, with and without lbprov's table", async () => {
    await withNetns((ns) => {
      const drops = Array.from({ length: 20_000 }, (_, i) => `add rule inet blocklist input ip saddr 198.18.${i >> 8}.${i & 255} drop`);
      ns.run(['nft', '-f', '-'], ['add table inet blocklist', 'add chain inet blocklist input { type filter hook input priority 0; policy accept; }', ...drops, ''].join('\n'));

      const before = readFacts(ns);
      expect(before.read.section('nftables')).toMatchObject({ rc: 0, body: '' });
      expect(nftablesBackend.usable(before.read).usable).toBe(true);
      expect(nftablesBackend.readFacts(before.read, 'ipv4', []).facts.nftables).toMatchObject({ usable: true, expressions: 'ok' });

      const gw = { ...gatewaySpec([3, 1]), firewall: 'nftables' as const };
      const desired = renderDesiredState(gw, playbook, templates, factsFor(gw, {}, 'nftables')).filter((r) => nftablesBackend.kinds.includes(r.kind));
      for (const s of nftablesBackend.applySteps(diffResources(desired, []))) ns.run(['nft', '-f', '-'], stdinPayloads(s.command)[1]!.text);

      const after = readFacts(ns);
      expect(after.body).not.toContain('blocklist');
      const read = nftablesBackend.readFacts(after.read, 'ipv4', []);
      expect(read.facts.nftables).toMatchObject({ usable: true, expressions: 'in-use' });
      expect([...read.resources].sort((a, b) => a.id.localeCompare(b.id))).toEqual([...desired].sort((a, b) => a.id.localeCompare(b.id)));
    });
  });
});
