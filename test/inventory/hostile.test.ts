/** Hostile and broken inventories: each must fail with an InputError naming file, line and key. */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { InventoryErrors, parseInventoryText } from '../../src/inventory/index.js';
import { EXAMPLE_INVENTORY, mutate } from './fixtures.js';

const FILE = 'hostile.yml';
const G = 'gateways.gw-a1';

interface Row {
  name: string;
  source: string | Buffer;
  key: string;
  line: number;
  /** Part of the problem text, when the row is about a specific explanation. */
  problem?: RegExp;
}

/** Every problem the loader reported for `source`. */
function problemsOf(source: string | Buffer): readonly InputError[] {
  try {
    parseInventoryText(source, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(InventoryErrors);
    const problems = (error as InventoryErrors).problems;
    for (const p of problems) {
      expect(p).toBeInstanceOf(InputError);
      expect(p.message).toBe(`${p.location}: ${p.key}: ${p.problem}`);
      expect(p.message).not.toMatch(/[\n\r]/);
    }
    return problems;
  }
  throw new Error('the inventory was accepted');
}

/** A value spliced into the fixture as a YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (value: string) => JSON.stringify(value);

/** Shell, option and line injections, and an over-long value, built on a valid `base`. */
function hostileVariants(base: string): [string, string][] {
  return [
    ['semicolon', `${base};reboot`],
    ['command substitution', `${base}$(reboot)`],
    ['backticks', `${base}\`reboot\``],
    ['newline', `${base}\n-A PREROUTING -j ACCEPT`],
    ['carriage return', `${base}\rx`],
    ['single quote', `${base}'`],
    ['double quote', `${base}"`],
    ['space', `${base} x`],
    ['tab', `${base}\tx`],
    ['NUL', `${base}\u0000`],
    ['leading dash', `-${base}`],
    ['over-long', base + 'x'.repeat(5000)],
    ['empty', ''],
  ];
}

const FIELDS: { field: string; from: string; to: (v: string) => string; key: string; line: number; base: string }[] = [
  { field: 'link interface', from: 'interface: eth1', to: (v) => `interface: ${q(v)}`, key: `${G}.links[0].interface`, line: 14, base: 'eth1' },
  { field: 'LAN interface', from: 'interfaces: [eth0]', to: (v) => `interfaces: [${q(v)}]`, key: `${G}.lan.interfaces[0]`, line: 11, base: 'eth0' },
  { field: 'link name', from: 'name: isp2', to: (v) => `name: ${q(v)}`, key: `${G}.links[1].name`, line: 18, base: 'isp2' },
  { field: 'host', from: 'host: 192.0.2.1', to: (v) => `host: ${q(v)}`, key: `${G}.host`, line: 8, base: 'gw.example.net' },
  { field: 'probe', from: 'probes: [203.0.113.1]', to: (v) => `probes: [${q(v)}]`, key: `${G}.links[1].probes[0]`, line: 22, base: '203.0.113.1' },
  { field: 'next hop', from: 'gateway: 198.51.100.1', to: (v) => `gateway: ${q(v)}`, key: `${G}.links[0].gateway`, line: 15, base: '198.51.100.1' },
  { field: 'identity file', from: 'identity_file: ~/.ssh/id_ed25519', to: (v) => `identity_file: ${q(v)}`, key: 'ssh.identity_file', line: 4, base: '~/.ssh/id_ed25519' },
  { field: 'known_hosts', from: 'known_hosts: ~/.ssh/known_hosts', to: (v) => `known_hosts: ${q(v)}`, key: 'ssh.known_hosts', line: 5, base: '/etc/ssh/known_hosts' },
  { field: 'ssh user', from: 'user: root', to: (v) => `user: ${q(v)}`, key: 'ssh.user', line: 2, base: 'root' },
  { field: 'group member', from: 'paris: [gw-a1]', to: (v) => `paris: [${q(v)}]`, key: 'groups.paris[0]', line: 24, base: 'gw-a1' },
];

const injectionRows: Row[] = FIELDS.flatMap(({ field, from, to, key, line, base }) =>
  hostileVariants(base).map(([variant, value]) => ({
    name: `${field}: ${variant}`,
    source: mutate(EXAMPLE_INVENTORY, from, to(value)),
    key,
    line,
  })),
);

const weight = (value: string): Row => ({
  name: `weight ${value}`,
  source: mutate(EXAMPLE_INVENTORY, 'weight: 3', `weight: ${value}`),
  key: `${G}.links[0].weight`,
  line: 16,
  problem: /integer from 1 to 100/,
});

const link = (i: number, weightValue = 1) =>
  `      - { name: l${i}, interface: wan${i}, gateway: 192.0.2.${(i % 250) + 1}, weight: ${weightValue} }`;
const withLinks = (links: string[]) =>
  `gateways:\n  gw-a1:\n    host: 192.0.2.1\n    lan: { interfaces: [lan0] }\n    links:\n${links.join('\n')}\n`;

const BOMB = `bomb:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
`;

const nonUtf8 = Buffer.concat([
  Buffer.from(mutate(EXAMPLE_INVENTORY, 'host: 192.0.2.1', 'host: 192.0.2.1\u00e9').split('\u00e9')[0]!),
  Buffer.from([0xc3, 0x28]), // a two-byte lead followed by a non-continuation byte
  Buffer.from(EXAMPLE_INVENTORY.split('host: 192.0.2.1')[1]!),
]);

const rows: Row[] = [
  ...injectionRows,
  ...['0', '-1', '1e9', '2.5', '"3"', '101', 'null', 'true', '.nan', '[3]'].map(weight),
  { name: 'port 0', source: mutate(EXAMPLE_INVENTORY, '  port: 22\n', '  port: 0\n'), key: 'ssh.port', line: 3 },
  { name: 'port 65536', source: mutate(EXAMPLE_INVENTORY, '{ port: 2222 }', '{ port: 65536 }'), key: `${G}.ssh.port`, line: 9 },
  { name: 'port as a string', source: mutate(EXAMPLE_INVENTORY, '  port: 22\n', '  port: "22"\n'), key: 'ssh.port', line: 3 },
  { name: 'zero connect timeout', source: mutate(EXAMPLE_INVENTORY, '{ port: 2222 }', '{ port: 2222, connect_timeout: 0.0001 }'), key: `${G}.ssh.connect_timeout`, line: 9 },
  { name: 'fractional keepalive', source: mutate(EXAMPLE_INVENTORY, '{ port: 2222 }', '{ port: 2222, keepalive_interval: 0.5 }'), key: `${G}.ssh.keepalive_interval`, line: 9 },
  { name: 'proxy jump with an option', source: mutate(EXAMPLE_INVENTORY, '{ port: 2222 }', '{ port: 2222, proxy_jump: "-oProxyCommand=sh" }'), key: `${G}.ssh.proxy_jump`, line: 9 },
  { name: 'proxy jump with a bad port', source: mutate(EXAMPLE_INVENTORY, '{ port: 2222 }', '{ port: 2222, proxy_jump: "a@b.example:99999" }'), key: `${G}.ssh.proxy_jump`, line: 9 },
  { name: 'IPv4 with a leading zero', source: mutate(EXAMPLE_INVENTORY, 'gateway: 203.0.113.1', 'gateway: 203.0.113.01'), key: `${G}.links[1].gateway`, line: 20 },
  { name: 'multicast next hop', source: mutate(EXAMPLE_INVENTORY, 'gateway: 203.0.113.1', 'gateway: 224.0.0.1'), key: `${G}.links[1].gateway`, line: 20 },
  { name: 'numeric-looking host name', source: mutate(EXAMPLE_INVENTORY, 'host: 192.0.2.1', 'host: 192.0.2.256'), key: `${G}.host`, line: 8 },
  { name: 'relative identity file', source: mutate(EXAMPLE_INVENTORY, 'identity_file: ~/.ssh/id_ed25519', 'identity_file: id_ed25519'), key: 'ssh.identity_file', line: 4 },
  { name: 'duplicate link name', source: mutate(EXAMPLE_INVENTORY, 'name: isp2', 'name: isp1'), key: `${G}.links[1].name`, line: 18, problem: /already used by links\[0\]/ },
  { name: 'duplicate link interface', source: mutate(EXAMPLE_INVENTORY, 'interface: eth2', 'interface: eth1'), key: `${G}.links[1].interface`, line: 19, problem: /already used by links\[0\]\.interface/ },
  { name: 'LAN interface reused by a link', source: mutate(EXAMPLE_INVENTORY, 'interfaces: [eth0]', 'interfaces: [eth1]'), key: `${G}.links[0].interface`, line: 14, problem: /lan\.interfaces\[0\]/ },
  { name: 'duplicate probe', source: mutate(EXAMPLE_INVENTORY, 'probes: [203.0.113.1]', 'probes: [203.0.113.1, 203.0.113.1]'), key: `${G}.links[1].probes[1]`, line: 22 },
  { name: 'duplicate gateway name', source: mutate(EXAMPLE_INVENTORY, 'groups:', '  gw-a1:\n    host: 192.0.2.2\ngroups:'), key: `${G}`, line: 23, problem: /unique/ },
  { name: 'duplicate key in a link', source: mutate(EXAMPLE_INVENTORY, 'weight: 1', 'weight: 1\n        weight: 2'), key: `${G}.links[1].weight`, line: 22 },
  { name: 'same SSH target twice', source: mutate(EXAMPLE_INVENTORY, 'groups:', `  gw-b1:\n    host: 192.0.2.1\n    ssh: { port: 2222 }\n${withLinks([link(0), link(1)]).split('\n').slice(3).join('\n')}groups:`), key: 'gateways.gw-b1.host', line: 24, problem: /same SSH target root@192\.0\.2\.1:2222 as gateway "gw-a1"/ },
  { name: 'group member that does not exist', source: mutate(EXAMPLE_INVENTORY, 'paris: [gw-a1]', 'paris: [gw-a1, gw-zz]'), key: 'groups.paris[1]', line: 24 },
  { name: 'group named like a gateway', source: mutate(EXAMPLE_INVENTORY, 'paris: [gw-a1]', 'gw-a1: [gw-a1]'), key: 'groups.gw-a1', line: 24 },
  { name: 'group called all', source: mutate(EXAMPLE_INVENTORY, 'paris: [gw-a1]', 'all: [gw-a1]'), key: 'groups.all', line: 24 },
  { name: 'gateway name with a shell metacharacter', source: mutate(EXAMPLE_INVENTORY, '  gw-a1:', '  "gw;a1":'), key: 'gateways["gw;a1"]', line: 7 },
  { name: 'one link', source: withLinks([link(0)]), key: `${G}.links`, line: 5, problem: /at least 2 links/ },
  { name: '9 links', source: withLinks(Array.from({ length: 9 }, (_, i) => link(i))), key: `${G}.links`, line: 5, problem: /at most 8 links/ },
  { name: '65 links', source: withLinks(Array.from({ length: 65 }, (_, i) => link(i))), key: `${G}.links`, line: 5 },
  { name: 'weights beyond 256 pool slots', source: withLinks([link(0, 100), link(1, 99), link(2, 98)]), key: `${G}.links`, line: 5, problem: /297 balancing slots/ },
  { name: 'unknown key with a suggestion', source: mutate(EXAMPLE_INVENTORY, 'weight: 3', 'wieght: 3'), key: `${G}.links[0].wieght`, line: 16, problem: /unknown key "wieght" \(did you mean "weight"\?\)/ },
  { name: 'unknown top-level key', source: `${EXAMPLE_INVENTORY}playbook: x\n`, key: 'playbook', line: 25, problem: /unknown key/ },
  { name: '__proto__ key', source: mutate(EXAMPLE_INVENTORY, '    host: 192.0.2.1', '    __proto__: { polluted: true }\n    host: 192.0.2.1'), key: `${G}.__proto__`, line: 8 },
  { name: 'missing host', source: mutate(EXAMPLE_INVENTORY, '    host: 192.0.2.1            # where SSH connects\n', ''), key: `${G}.host`, line: 7, problem: /is required/ },
  { name: 'YAML 1.1 boolean', source: mutate(EXAMPLE_INVENTORY, '{ port: 2222 }', '{ port: 2222, become: yes }'), key: `${G}.ssh.become`, line: 9 },
  { name: 'non-contiguous mark mask', source: mutate(EXAMPLE_INVENTORY, '    lan:', '    mark_mask: 0xf0f0\n    lan:'), key: `${G}.mark_mask`, line: 10 },
  { name: 'mark mask too small for the links', source: mutate(EXAMPLE_INVENTORY, '    lan:', '    mark_mask: "0x100"\n    lan:'), key: `${G}.mark_mask`, line: 10, problem: /1 non-zero values, fewer than the 2 links/ },
  { name: 'routing tables over 253-255', source: `defaults: { table_base: 252 }\n${EXAMPLE_INVENTORY}`, key: 'defaults.table_base', line: 1, problem: /253-253|253-254|253-255/ },
  { name: 'priorities past 32765', source: mutate(EXAMPLE_INVENTORY, '    lan:', '    priority_base: 32700\n    lan:'), key: `${G}.priority_base`, line: 10 },
  { name: 'unknown failover mode', source: mutate(EXAMPLE_INVENTORY, '    lan:', '    failover: random\n    lan:'), key: `${G}.failover`, line: 10 },
  { name: 'reliability above the probe count', source: `defaults: { monitor: { reliability: 2 } }\n${EXAMPLE_INVENTORY}`, key: 'defaults.monitor.reliability', line: 1, problem: /gateways\.gw-a1\.links\[0\]/ },
  { name: 'monitor timeout above the interval', source: mutate(EXAMPLE_INVENTORY, 'probes: [198.51.100.1]', 'probes: [198.51.100.1]\n        monitor: { interval: 1, timeout: 2 }'), key: `${G}.links[0].monitor.timeout`, line: 18 },
  { name: 'no gateways', source: 'gateways: {}\n', key: 'gateways', line: 1, problem: /at least one gateway/ },
  { name: 'empty file', source: '', key: '(document)', line: 1 },
  { name: 'a list instead of a mapping', source: '- a\n- b\n', key: '(document)', line: 1, problem: /must be a mapping/ },
  { name: 'two YAML documents', source: `${EXAMPLE_INVENTORY}---\nfoo: 1\n`, key: '(document)', line: 25 },
  { name: 'YAML syntax error', source: mutate(EXAMPLE_INVENTORY, 'weight: 1', 'weight: 1: 2'), key: `${G}.links[1].weight.1`, line: 21 },
  { name: 'tab indentation', source: mutate(EXAMPLE_INVENTORY, '    lan:', '\tlan:'), key: '(document)', line: 10 },
  { name: 'unknown tag', source: mutate(EXAMPLE_INVENTORY, 'weight: 1', 'weight: !!js/function 1'), key: `${G}.links[1].weight`, line: 21 },
  { name: 'YAML alias bomb', source: BOMB + EXAMPLE_INVENTORY, key: 'bomb.b[0]', line: 3, problem: /alias bomb/ },
  { name: 'deep nesting', source: mutate(EXAMPLE_INVENTORY, 'interfaces: [eth0]', `interfaces: ${'['.repeat(100_000)}${']'.repeat(100_000)}`), key: `${G}.lan.interfaces[0][0][0][0]`, line: 11, problem: /nested too deeply/ },
  { name: 'non-UTF-8 bytes', source: nonUtf8, key: '(document)', line: 8, problem: new RegExp(`invalid UTF-8 at byte offset ${nonUtf8.indexOf(0xc3)}`) },
  { name: '50 MB inventory (bytes)', source: Buffer.alloc(50 * 1024 * 1024, 0x61), key: '(document)', line: 1, problem: /limit is 4194304 bytes/ },
  { name: '50 MB inventory (text)', source: EXAMPLE_INVENTORY + `# ${'x'.repeat(50 * 1024 * 1024)}\n`, key: '(document)', line: 1, problem: /limit is 4194304 bytes/ },
];

describe('hostile inventories', () => {
  it.each(rows)('$name -> $key at line $line', ({ source, key, line, problem }) => {
    const problems = problemsOf(source);
    const match = problems.find((p) => p.key === key && p.location === `${FILE}:${line}`);
    expect(match, problems.map((p) => p.message).join('\n')).toBeDefined();
    if (problem) expect(match?.problem).toMatch(problem);
  });

  it('reports several problems at once, ordered by line', () => {
    const source = mutate(mutate(mutate(EXAMPLE_INVENTORY, 'weight: 1', 'weight: 0'), 'user: root', 'user: "r;m"'), 'interface: eth1', 'interface: "a b"');
    const problems = problemsOf(source);
    expect(problems.map((p) => [p.location, p.key])).toEqual([
      [`${FILE}:2`, 'ssh.user'],
      [`${FILE}:14`, `${G}.links[0].interface`],
      [`${FILE}:21`, `${G}.links[1].weight`],
    ]);
  });

  it('shows hostile values escaped and cut short in messages', () => {
    const [problem] = problemsOf(mutate(EXAMPLE_INVENTORY, 'interface: eth1', `interface: ${q(`eth1\n-A INPUT -j ACCEPT${'x'.repeat(500)}`)}`));
    expect(problem?.problem).toContain('(got "eth1\\n-A INPUT');
    expect(problem?.problem.length).toBeLessThan(200);
  });
});
