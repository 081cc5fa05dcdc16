/**
 * Fuzz: whatever is written into any inventory field, loading either fails with an InputError
 * or yields values that all pass the strict validators: nothing unvalidated reaches a command.
 */
import fc from 'fast-check';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { InputError } from '../../src/errors.js';
import {
  isGatewayName,
  isInterfaceName,
  isLinkName,
  isLocalFilePath,
  isProxyJump,
  isSshHost,
  isSshUser,
  isUnicastIPv4,
  parseInventoryText,
} from '../../src/inventory/index.js';
import type { Inventory } from '../../src/model/inventory.js';
import { EXAMPLE_INVENTORY } from './fixtures.js';

const FILE = 'fuzz.yml';

/** The example with every optional key present, so each can be fuzzed. */
const BASE = parseYaml(EXAMPLE_INVENTORY) as Record<string, unknown>;
Object.assign(BASE, {
  defaults: { mark_mask: '0xff00', table_base: 100, priority_base: 100, failover: 'auto', monitor: { interval: 2, timeout: 1, reliability: 1, down: 3, up: 3 } },
});
Object.assign(((BASE.gateways as Record<string, { links: object[] }>)['gw-a1']!.links[0])!, { monitor: { interval: 2, timeout: 1 } });
Object.assign(BASE.ssh as object, { become: false, proxy_jump: 'jump@bastion.example.net:22', connect_timeout: 5, command_timeout: 30, keepalive_interval: 10 });

const G = ['gateways', 'gw-a1'];
const L = [...G, 'links', 0];
const FIELD_PATHS: (string | number)[][] = [
  ['ssh', 'user'], ['ssh', 'port'], ['ssh', 'identity_file'], ['ssh', 'known_hosts'], ['ssh', 'become'],
  ['ssh', 'proxy_jump'], ['ssh', 'connect_timeout'], ['ssh', 'keepalive_interval'],
  ['defaults', 'mark_mask'], ['defaults', 'table_base'], ['defaults', 'failover'], ['defaults', 'monitor', 'reliability'],
  [...G, 'host'], [...G, 'ssh', 'port'], [...G, 'ssh', 'user'], [...G, 'ssh', 'identity_file'], [...G, 'mark_mask'],
  [...G, 'priority_base'], [...G, 'lan', 'interfaces', 0], [...G, 'lan', 'interfaces', 1],
  [...L, 'name'], [...L, 'interface'], [...L, 'gateway'], [...L, 'weight'], [...L, 'probes', 0], [...L, 'probes', 1],
  [...L, 'monitor', 'interval'], [...G, 'links', 1, 'name'], [...G, 'links', 1, 'interface'], ['groups', 'paris', 0],
];

const HOSTILE = ['eth0;reboot', '$(reboot)', '`reboot`', 'eth0\n-A INPUT -j ACCEPT', "'", '"', ' ', '-oProxyCommand=x', '~/a b', '/tmp/$x', '..', '.', 'eth0+', '!eth0', '0x', '1e9', '__proto__', 'a'.repeat(300)];

const fuzzValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: fc.constantFrom(...'aZ09.-_@:/~;$`\'" \n\t\\|&!*?+,'), maxLength: 24 }),
  fc.constantFrom(...HOSTILE),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
);
const fuzzKey = fc.oneof(fc.string({ unit: 'binary', maxLength: 24 }), fc.constantFrom(...HOSTILE));

/** Write `value` at `path`, or rename the key at the end of `path` when `renameTo` is given. */
function setIn(root: unknown, path: readonly (string | number)[], value: unknown, renameTo?: string): void {
  let node = root as Record<string | number, unknown>;
  for (const segment of path.slice(0, -1)) node = node[segment] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (renameTo === undefined) {
    node[last] = value;
  } else if (renameTo !== last) {
    Object.defineProperty(node, renameTo, { value: node[last], enumerable: true, writable: true, configurable: true });
    delete node[last];
  }
}

/** Every string and number of a loaded inventory passes its strict check; no field is unchecked. */
function assertSafe(inventory: Inventory): void {
  expect(Object.keys(inventory).sort()).toEqual(['gateways', 'groups', 'path']);
  expect(inventory.path).toBe(resolve(FILE));
  const gatewayNames = new Set(inventory.gateways.map((g) => g.name));
  for (const [group, members] of Object.entries(inventory.groups)) {
    expect(isGatewayName(group), group).toBe(true);
    for (const member of members) expect(gatewayNames.has(member)).toBe(true);
  }
  const isInt = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max;
  for (const g of inventory.gateways) {
    expect(Object.keys(g).sort()).toEqual(['failover', 'firewall', 'hookTimeoutS', 'hooks', 'lanInterfaces', 'links', 'markMask', 'metricsDir', 'name', 'priorityBase', 'rules', 'source', 'ssh', 'sshExplicit', 'sticky', 'tableBase', 'warnings']);
    for (const key of g.sshExplicit ?? []) expect(['host', ...Object.keys(g.ssh), 'identityFile', 'proxyJump']).toContain(key);
    expect(isGatewayName(g.name), g.name).toBe(true);
    expect(g.source).toMatch(new RegExp(`^${FILE}:\\d+$`));
    const s = g.ssh;
    expect(['become', 'commandTimeoutMs', 'connectionAttempts', 'connectTimeoutMs', 'host', 'identityFile', 'keepaliveIntervalMs', 'knownHosts', 'port', 'proxyJump', 'user']).toEqual(
      expect.arrayContaining(Object.keys(s)),
    );
    expect(isSshHost(s.host), s.host).toBe(true);
    expect(isSshUser(s.user), s.user).toBe(true);
    expect(isInt(s.port, 1, 65535)).toBe(true);
    expect(isLocalFilePath(s.knownHosts), s.knownHosts).toBe(true);
    if (s.identityFile !== undefined) expect(isLocalFilePath(s.identityFile), s.identityFile).toBe(true);
    if (s.proxyJump !== undefined) expect(isProxyJump(s.proxyJump), s.proxyJump).toBe(true);
    expect(typeof s.become).toBe('boolean');
    for (const ms of [s.connectTimeoutMs, s.commandTimeoutMs, s.keepaliveIntervalMs]) expect(isInt(ms, 0, 3_600_000)).toBe(true);
    expect(isInt(s.connectionAttempts, 1, 10)).toBe(true);
    for (const ifname of g.lanInterfaces) expect(isInterfaceName(ifname), ifname).toBe(true);
    expect(isInt(g.markMask, 1, 0xffffffff)).toBe(true);
    expect(isInt(g.tableBase, 0, 2 ** 31)).toBe(true);
    expect(isInt(g.priorityBase, 1, 32666)).toBe(true);
    expect(['auto', 'condition', 'chain-swap']).toContain(g.failover);
    for (const link of g.links) {
      expect(Object.keys(link).sort()).toEqual(['interface', 'monitor', 'name', 'nextHop', 'probes', 'tier', 'weight']);
      expect(isLinkName(link.name), link.name).toBe(true);
      expect(isInterfaceName(link.interface), link.interface).toBe(true);
      if (link.nextHop.kind === 'static') expect(isUnicastIPv4(link.nextHop.address), link.nextHop.address).toBe(true);
      expect(isInt(link.weight, 1, 100)).toBe(true);
      for (const probe of link.probes) expect(isUnicastIPv4(probe), probe).toBe(true);
      const m = link.monitor;
      for (const n of [m.reliability, m.down, m.up, m.window]) expect(isInt(n, 1, 3600)).toBe(true);
      expect(m.intervalS >= 0.2 && m.intervalS <= 3600 && m.timeoutS <= m.intervalS).toBe(true);
    }
  }
}

/** Loading must either succeed safely or fail with an InputError; anything else is a bug. */
function loadsSafelyOrRefuses(text: string): void {
  let inventory: Inventory;
  try {
    inventory = parseInventoryText(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return;
  }
  assertSafe(inventory);
}

describe('inventory fuzzing', () => {
  it('the unfuzzed base loads', () => {
    expect(parseInventoryText(stringifyYaml(BASE), FILE).gateways).toHaveLength(1);
  });

  it('arbitrary values in any field are refused or pass the strict validators', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...FIELD_PATHS), fuzzValue), { minLength: 1, maxLength: 3 }), (edits) => {
        const inventory = structuredClone(BASE);
        for (const [path, value] of edits) setIn(inventory, path, value);
        loadsSafelyOrRefuses(stringifyYaml(inventory));
      }),
      { numRuns: 400 },
    );
  });

  it('arbitrary gateway, group and key names are refused or pass the strict validators', () => {
    const renamable: (string | number)[][] = [[...G], ['groups', 'paris'], ['ssh', 'user'], [...L, 'weight']];
    fc.assert(
      fc.property(fc.constantFrom(...renamable), fuzzKey, (path, name) => {
        const inventory = structuredClone(BASE);
        setIn(inventory, path, undefined, name);
        loadsSafelyOrRefuses(stringifyYaml(inventory));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary raw text spliced into the YAML source is refused or passes the strict validators', () => {
    const lines = EXAMPLE_INVENTORY.split('\n');
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: lines.length - 1 }),
        fc.nat(),
        fc.string({ unit: fc.oneof(fc.constantFrom(...'[]{}&*!|>\'"%@`#:,-? \n\t'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 16 }),
        (lineIndex, column, text) => {
          const line = lines[lineIndex]!;
          const at = column % (line.length + 1);
          const mutated = [...lines];
          mutated[lineIndex] = line.slice(0, at) + text + line.slice(at);
          loadsSafelyOrRefuses(mutated.join('\n'));
        },
      ),
      { numRuns: 400 },
    );
  });
});
