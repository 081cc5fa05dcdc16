import { mkdtempSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { InventoryErrors, loadInventory, parseInventoryText, resolveInventoryPath } from '../../src/inventory/index.js';
import { EXAMPLE_INVENTORY, mutate } from './fixtures.js';

const workDir = mkdtempSync(join(tmpdir(), `lbprov-inv-${process.pid}-`));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('resolveInventoryPath', () => {
  it('maps a name to inventories/NAME.yml under the working directory', () => {
    expect(resolveInventoryPath('site-a', '/srv/x')).toBe('/srv/x/inventories/site-a.yml');
  });
  it('takes anything with a slash or a YAML suffix as a path', () => {
    expect(resolveInventoryPath('./site-a', '/srv/x')).toBe('/srv/x/site-a');
    expect(resolveInventoryPath('site-a.yaml', '/srv/x')).toBe('/srv/x/site-a.yaml');
    expect(resolveInventoryPath('/etc/lb/inv.yml', '/srv/x')).toBe('/etc/lb/inv.yml');
  });
  it('refuses names that are not plain names', () => {
    expect(() => resolveInventoryPath('', '/srv/x')).toThrow(InputError);
    expect(() => resolveInventoryPath('a;b', '/srv/x')).toThrow(InputError);
  });
});

describe('the core issue example', () => {
  const inventory = parseInventoryText(EXAMPLE_INVENTORY, 'example.yml');

  it('loads with the documented defaults', () => {
    expect(inventory.groups).toEqual({ paris: ['gw-a1'] });
    expect(inventory.gateways).toHaveLength(1);
    const [gateway] = inventory.gateways;
    expect(gateway).toEqual({
      name: 'gw-a1',
      ssh: {
        host: '192.0.2.1',
        port: 2222,
        user: 'root',
        identityFile: join(homedir(), '.ssh/id_ed25519'),
        knownHosts: join(homedir(), '.ssh/known_hosts'),
        become: false,
        connectTimeoutMs: 10_000,
        commandTimeoutMs: 60_000,
        keepaliveIntervalMs: 15_000,
        connectionAttempts: 3,
      },
      // Written in the example (top-level ssh and the gateway's port); the rest may come from ~/.ssh/config.
      sshExplicit: ['host', 'identityFile', 'knownHosts', 'port', 'user'],
      lanInterfaces: ['eth0'],
      links: [
        {
          name: 'isp1',
          interface: 'eth1',
          nextHop: { kind: 'static', address: '198.51.100.1' },
          weight: 3,
          tier: 1,
          probes: ['198.51.100.1'],
          monitor: { intervalS: 2, timeoutS: 1, reliability: 1, down: 3, up: 3, latencyMs: null, lossPct: null, window: 10, flap: { changes: 8, withinS: 600, holdS: 300 } },
        },
        {
          name: 'isp2',
          interface: 'eth2',
          nextHop: { kind: 'static', address: '203.0.113.1' },
          weight: 1,
          tier: 1,
          probes: ['203.0.113.1'],
          monitor: { intervalS: 2, timeoutS: 1, reliability: 1, down: 3, up: 3, latencyMs: null, lossPct: null, window: 10, flap: { changes: 8, withinS: 600, holdS: 300 } },
        },
      ],
      markMask: 0xf0000000,
      tableBase: 100,
      priorityBase: 100,
      failover: 'auto',
      firewall: 'auto',
      sticky: null,
      rules: [],
      hooks: [],
      hookTimeoutS: 10,
      metricsDir: '/var/lib/prometheus/node-exporter',
      warnings: [],
      source: 'example.yml:7',
    });
  });

  it('records the absolute path', () => {
    expect(inventory.path).toBe(join(process.cwd(), 'example.yml'));
  });
});

const OVERRIDES = `
ssh:
  user: admin
  identity_file: /keys/fleet
  proxy_jump: jump@bastion.example.net:2200
  connect_timeout: 2.5
  keepalive_interval: 0
defaults:
  mark_mask: "0x00ff0000"
  table_base: 200
  failover: chain-swap
  monitor: { interval: 5, down: 2 }
gateways:
  plain:
    host: gw-plain.example.net
    lan: { interfaces: [lan0, lan1] }
    links:
      - { name: a, interface: wan0, gateway: 198.51.100.1, weight: 2 }
      - { name: b, interface: wan1, gateway: 198.51.100.1, weight: 4, probes: [192.0.2.8, 192.0.2.9], monitor: { reliability: 2, up: 5 } }
  tuned:
    host: 192.0.2.20
    ssh: { user: ops, become: true, identity_file: null, proxy_jump: null, port: 2022 }
    mark_mask: 0xf000
    table_base: 300
    priority_base: 1000
    failover: condition
    lan: { interfaces: [br0] }
    links:
      - { name: a, interface: eth1, gateway: 203.0.113.1, weight: 1 }
      - { name: b, interface: eth2, gateway: 203.0.113.5, weight: 1 }
      - { name: c, interface: eth3, gateway: 203.0.113.9, weight: 1 }
`;

describe('overrides', () => {
  const [plain, tuned] = parseInventoryText(OVERRIDES, 'o.yml').gateways;

  it('applies top-level ssh and defaults to a gateway that sets nothing', () => {
    expect(plain?.ssh).toEqual({
      host: 'gw-plain.example.net',
      port: 22,
      user: 'admin',
      identityFile: '/keys/fleet',
      proxyJump: 'jump@bastion.example.net:2200',
      knownHosts: join(homedir(), '.ssh/known_hosts'),
      become: false,
      connectTimeoutMs: 2500,
      commandTimeoutMs: 60_000,
      keepaliveIntervalMs: 0,
      connectionAttempts: 3,
    });
    expect([plain?.markMask, plain?.tableBase, plain?.priorityBase, plain?.failover]).toEqual([0xff0000, 200, 100, 'chain-swap']);
    expect(plain?.lanInterfaces).toEqual(['lan0', 'lan1']);
  });

  it('defaults probes to the next hop and layers monitor settings link > defaults > built-in', () => {
    expect(plain?.links[0]?.probes).toEqual(['198.51.100.1']);
    expect(plain?.links[0]?.monitor).toEqual({ intervalS: 5, timeoutS: 1, reliability: 1, down: 2, up: 3, latencyMs: null, lossPct: null, window: 10, flap: { changes: 8, withinS: 600, holdS: 300 } });
    expect(plain?.links[1]?.monitor).toEqual({ intervalS: 5, timeoutS: 1, reliability: 2, down: 2, up: 5, latencyMs: null, lossPct: null, window: 10, flap: { changes: 8, withinS: 600, holdS: 300 } });
  });

  it('lets a gateway override every setting, and null clear an optional one', () => {
    expect(tuned?.ssh.user).toBe('ops');
    expect(tuned?.ssh.port).toBe(2022);
    expect(tuned?.ssh.become).toBe(true);
    expect(tuned?.ssh).not.toHaveProperty('identityFile');
    expect(tuned?.ssh).not.toHaveProperty('proxyJump');
    expect(tuned?.ssh.connectTimeoutMs).toBe(2500);
    expect([tuned?.markMask, tuned?.tableBase, tuned?.priorityBase, tuned?.failover]).toEqual([0xf000, 300, 1000, 'condition']);
  });

  it('records which ssh settings the inventory wrote, null included, so ~/.ssh/config fills only the rest', () => {
    expect(plain?.sshExplicit).toEqual(['connectTimeoutMs', 'host', 'identityFile', 'keepaliveIntervalMs', 'proxyJump', 'user']);
    expect(tuned?.sshExplicit).toEqual(['become', 'connectTimeoutMs', 'host', 'identityFile', 'keepaliveIntervalMs', 'port', 'proxyJump', 'user']);
  });

  it('accepts 8 links with weights that reduce to 256 slots', () => {
    const links = Array.from({ length: 8 }, (_, i) => `      - { name: l${i}, interface: wan${i}, gateway: 192.0.2.${i + 1}, weight: ${i === 0 ? 100 : i < 7 ? 25 : 6} }`);
    const text = `gateways:\n  g:\n    host: g.example\n    lan: { interfaces: [lan0] }\n    links:\n${links.join('\n')}\n`;
    const [gateway] = parseInventoryText(text, 'eight.yml').gateways;
    expect(gateway?.links.map((l) => l.weight).reduce((a, b) => a + b)).toBe(256);
  });
});

describe('loadInventory', () => {
  mkdirSync(join(workDir, 'inventories'));
  writeFileSync(join(workDir, 'inventories', 'site-a.yml'), EXAMPLE_INVENTORY);

  it('reads inventories/NAME.yml relative to the working directory', () => {
    const inventory = loadInventory('site-a', workDir);
    expect(inventory.path).toBe(join(workDir, 'inventories', 'site-a.yml'));
    expect(inventory.gateways[0]?.source).toBe(`${inventory.path}:7`);
  });

  it('names the file it could not find', () => {
    expect(() => loadInventory('missing', workDir)).toThrow(/inventories\/missing\.yml: \(document\): no such inventory file/);
  });

  it('refuses a 50 MB file from its size, and a directory', () => {
    const huge = join(workDir, 'huge.yml');
    writeFileSync(huge, '');
    truncateSync(huge, 50 * 1024 * 1024); // sparse: nothing to read if the size check comes first
    expect(() => loadInventory(huge, workDir)).toThrow(`${huge}:1: (document): file is 52428800 bytes; the limit is 4194304 bytes (4 MiB)`);
    expect(() => loadInventory('./inventories', workDir)).toThrow(/is not a regular file/);
  });

  it('reads CRLF line endings with the same line numbers', () => {
    writeFileSync(join(workDir, 'crlf.yml'), mutate(EXAMPLE_INVENTORY, 'weight: 1', 'weight: 1.5').replace(/\n/g, '\r\n'));
    expect(() => loadInventory('./crlf.yml', workDir)).toThrow(/crlf\.yml:21: gateways\.gw-a1\.links\[1\]\.weight: must be an integer/);
  });

  it('reports errors at the absolute path with every problem on its own line', () => {
    const bad = mutate(mutate(EXAMPLE_INVENTORY, 'weight: 3', 'weight: 0'), 'interface: eth2', 'interface: "eth 2"');
    writeFileSync(join(workDir, 'bad.yml'), bad);
    const error = catchError(() => loadInventory('./bad.yml', workDir));
    const file = join(workDir, 'bad.yml');
    expect(error).toBeInstanceOf(InventoryErrors);
    expect(error.message.split('\n')).toEqual([
      `${file}:16: gateways.gw-a1.links[0].weight: must be an integer from 1 to 100 (got 0)`,
      `${file}:19: gateways.gw-a1.links[1].interface: must be an interface name: 1-15 of [A-Za-z0-9_.@-], not starting with "-" or "." (got "eth 2")`,
    ]);
    expect(error.location).toBe(`${file}:16`);
  });
});

function catchError(fn: () => unknown): InventoryErrors {
  try {
    fn();
  } catch (error) {
    if (error instanceof InventoryErrors) return error;
    throw error;
  }
  throw new Error('expected an InventoryErrors');
}
