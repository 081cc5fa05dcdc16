/**
 * nft transactions built by the nftables backend, run by the real nft in a namespace: a table made
 * from nothing, changed (a link removed, a base chain moved) and removed, each in one `nft -f`
 * whose undo gives back exactly the table before; a payload nft refuses changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { nftablesBackend, parseNftTable } from '../../../src/firewall/nftables/index.js';
import { nftResources } from '../../../src/firewall/nftables/owned.js';
import { diffResources } from '../../../src/diff/diff.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../../src/render/playbook.js';
import { loadTemplateSet } from '../../../src/render/templates.js';
import { renderDesiredState } from '../../../src/render/desired.js';
import type { Resource } from '../../../src/model/resources.js';
import { factsFor, gatewaySpec } from '../../helpers/gateway.js';
import { skipNetns, withNetns, type Netns } from '../../helpers/netns.js';
import { stdinPayloads } from '../../helpers/stdin-payloads.js';

const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);
const nftOf = (rs: Resource[]) => rs.filter((r) => r.kind === 'nft-table' || r.kind === 'nft-chain');
const rendered = (weights: number[]) => {
  const gw = { ...gatewaySpec(weights), firewall: 'nftables' as const };
  return nftOf(renderDesiredState(gw, playbook, templates, factsFor(gw, {}, 'nftables')));
};
const listed = (ns: Netns) => nftResources(parseNftTable(ns.attempt(['nft', '-s', 'list', 'table', 'ip', 'lbprov']).stdout, 'nft list'));
/** What a step's shell command sends to `nft -f -` (the checked run and the real one get the same text). */
const payloadOf = (command: string) => stdinPayloads(command)[1]!.text;
const sorted = (rs: Resource[]) => [...rs].sort((a, b) => a.id.localeCompare(b.id));

describe.skipIf(skipNetns)('nft transactions on the real nft', () => {
  it('makes the table from nothing, changes it and removes it, one transaction each, each undone exactly', async () => {
    await withNetns((ns) => {
      const apply = (desired: Resource[]) => {
        const before = listed(ns);
        const steps = nftablesBackend.applySteps(diffResources(desired, before));
        expect(steps).toHaveLength(desired.length === 0 && before.length === 0 ? 0 : 1);
        for (const s of steps) {
          expect(s.command).toMatch(/\| nft -c -f - && printf/);
          ns.run(['nft', '-f', '-'], payloadOf(s.command));
        }
        expect(sorted(listed(ns))).toEqual(sorted(desired));
        // The undo gives back the table exactly as it was.
        for (const s of steps) ns.run(['nft', '-f', '-'], payloadOf(s.undo));
        expect(sorted(listed(ns))).toEqual(sorted(before));
        for (const s of steps) ns.run(['nft', '-f', '-'], payloadOf(s.command));
      };
      apply(rendered([3, 1, 1]));
      apply(rendered([5, 2]));
      // A base chain moved: deleted and declared again in the same transaction.
      const moved = rendered([5, 2]).map((r) => (r.kind === 'nft-chain' && r.chain === 'prerouting' ? { ...r, header: r.header.replace('mangle - 1', 'mangle + 1') } : r));
      apply(moved);
      apply([]);
      expect(ns.attempt(['nft', 'list', 'tables']).stdout).toBe('');
    });
  });

  it('changes nothing when nft refuses the payload', async () => {
    await withNetns((ns) => {
      const three = rendered([3, 1, 1]);
      ns.run(['nft', '-f', '-'], payloadOf(nftablesBackend.applySteps(diffResources(three, []))[0]!.command));
      const broken = rendered([3, 1]).map((r) => (r.kind === 'nft-chain' && r.chain === 'balance' ? { ...r, rules: ['jump no_such_chain'] } : r));
      const step = nftablesBackend.applySteps(diffResources(broken, listed(ns)))[0]!;
      const result = ns.attempt(['sh', '-c', step.command]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/No such file or directory/);
      expect(sorted(listed(ns))).toEqual(sorted(three));
    });
  });
});
