/**
 * Property: for any inventory the validator accepts, what lbprov builds for a shell (the facts
 * script, every apply step and its undo, the ip -batch and iptables-restore payloads) is made only
 * of validated, shell-inert words and shellQuote'd strings. A real `sh -n` parses every script,
 * every inventory value is a single literal shell word, and no payload gains a line.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { InputError } from '../../src/errors.js';
import { parseInventoryText } from '../../src/inventory/index.js';
import { nextHopWord, type GatewaySpec } from '../../src/model/inventory.js';
import { buildFactsScript } from '../../src/facts/script.js';
import { factsRequestFor, renderDesiredState } from '../../src/render/desired.js';
import { loadPlaybook } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { diffResources } from '../../src/diff/diff.js';
import { planSteps } from '../../src/apply/steps.js';
import { buildApplyScript } from '../../src/apply/script.js';
import { stdinPayloads } from '../helpers/stdin-payloads.js';
import { shellQuote } from '../../src/remote/quote.js';
import { factsFor } from '../helpers/gateway.js';

const ROOT = resolve(import.meta.dirname, '../..');
const playbook = loadPlaybook(join(ROOT, 'playbooks/balancer.yml'));
const templates = loadTemplateSet(playbook.templatesDir);

// Valid but awkward values: every character the validators allow, at the edges of their lengths.
const interfaceName = fc.stringMatching(/^[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,14}$/);
const linkName = fc.stringMatching(/^[a-z0-9_][a-z0-9_-]{0,14}$/);
const gatewayName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/);
const unicast = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).filter(([a]) => a !== 127).map((parts) => parts.join('.'));

const inventoryArbitrary = fc
  .record({
    name: gatewayName,
    lan: fc.uniqueArray(interfaceName, { minLength: 1, maxLength: 2 }),
    links: fc.uniqueArray(fc.record({ name: linkName, interface: interfaceName, gateway: unicast, weight: fc.integer({ min: 1, max: 40 }), probes: fc.uniqueArray(unicast, { minLength: 1, maxLength: 2 }) }), {
      minLength: 2,
      maxLength: 5,
      selector: (l) => l.name,
    }),
    mark_mask: fc.constantFrom(0xf0000000, 0xff00, 0x0f000000, 0x70),
    table_base: fc.constantFrom(100, 1, 200, 1000),
    priority_base: fc.constantFrom(100, 1, 30000),
    // 'condition' needs the xtables-addons match in the facts: not a quoting matter.
    failover: fc.constantFrom('auto', 'chain-swap'),
  })
  .map(({ name, lan, links, ...rest }) => stringify({ gateways: { [name]: { host: '192.0.2.1', lan: { interfaces: lan }, links, ...rest } } }));

/** The validated gateway, or undefined when the generator produced an invalid combination (duplicate interfaces, ...). */
function load(text: string): GatewaySpec | undefined {
  try {
    return parseInventoryText(text, 'prop.yml').gateways[0];
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return undefined;
  }
}

function shellParses(script: string): void {
  const result = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
}

describe('command builders over arbitrary valid inventories', () => {
  it('emit only literal words for inventory values, scripts sh parses, and payloads one line per rule', () => {
    fc.assert(
      fc.property(inventoryArbitrary, (text) => {
        const gw = load(text);
        fc.pre(gw !== undefined);
        if (!gw) return;
        const values = [gw.name, ...gw.lanInterfaces, ...gw.links.flatMap((l) => [l.name, l.interface, nextHopWord(l.nextHop), ...l.probes])];
        // Each validated value is one literal shell word: quoting it changes nothing.
        for (const value of values) expect(shellQuote(value)).toBe(value);

        const request = factsRequestFor(gw, playbook, templates);
        const facts = buildFactsScript(request);
        shellParses(facts.script);

        const desired = renderDesiredState(gw, playbook, templates, factsFor(gw));
        const steps = planSteps([...diffResources(desired, []), ...diffResources([], desired)]);
        const apply = buildApplyScript(steps, { verifyScript: facts.script, errorFile: '"$t/step.err"' });
        shellParses(apply.script);
        const commands = steps.flatMap((step) => [step.command, step.undo, step.recover ?? 'true']);
        // Each command on its own line of one script: one sh -n per run instead of one per command.
        shellParses(commands.map((c) => `( ${c}\n)`).join('\n'));
        for (const command of commands) {
          for (const { tool, text: payload } of stdinPayloads(command)) {
            const lines = payload.split('\n').filter((l) => l !== '');
            if (tool === 'ip') for (const line of lines) expect(line).toMatch(/^(route (replace|del)|rule (add|del)) [A-Za-z0-9 ._/:@-]+$/);
            if (tool === 'iptables-restore') {
              for (const line of lines) expect(line).toMatch(/^(\*(mangle|nat)|:LBPROV_[A-Z0-9_]+ - \[0:0\]|-[AIDFX] [A-Z_0-9]+( .*)?|COMMIT)$/);
            }
          }
        }
      }),
      { numRuns: 40 },
    );
  });
});
