import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventoryText } from '../../src/inventory/index.js';
import { inventoryErrorsOf } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'lbprov-inv-monitor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const inventory = (defaults: string, gatewayExtra = '') => `${defaults}
gateways:
  gw-a1:
    host: 192.0.2.1
    lan: { interfaces: [eth0] }${gatewayExtra}
    links:
      - { name: fibre, interface: eth1, gateway: 198.51.100.1, weight: 3 }
      - { name: dsl, interface: eth2, gateway: 203.0.113.1, weight: 1, monitor: { interval: 1 } }
`;

describe('monitor settings: quality, fractions, damping', () => {
  it("reads the issue's keys, per link over defaults.monitor", () => {
    const text = inventory('defaults:\n  monitor: { interval: 0.2, down: 3, up: 5, latency_ms: { down: 500, up: 250 }, loss_pct: { down: 20, up: 5 }, window: 10 }');
    const [gw] = parseInventoryText(text, join(dir, 'a.yml')).gateways;
    expect(gw!.links[0]!.monitor).toEqual({
      intervalS: 0.2,
      // Unset, the timeout follows a short interval.
      timeoutS: 0.2,
      reliability: 1,
      down: 3,
      up: 5,
      latencyMs: { down: 500, up: 250 },
      lossPct: { down: 20, up: 5 },
      window: 10,
      flap: { changes: 8, withinS: 600, holdS: 300 },
    });
    expect(gw!.links[1]!.monitor).toMatchObject({ intervalS: 1, timeoutS: 1, latencyMs: { down: 500, up: 250 } });
    expect(gw!.metricsDir).toBe('/var/lib/prometheus/node-exporter');
  });

  it.each([
    ['an interval under 0.2 s', 'interval: 0.1', /defaults\.monitor\.interval: must be a number of seconds from 0\.2 to 3600, with at most two decimals/],
    ['three decimals', 'interval: 0.255', /with at most two decimals/],
    ['an up threshold above the down one', 'latency_ms: { down: 200, up: 300 }', /defaults\.monitor\.latency_ms\.up: must not be above down \(200\)/],
    ['a loss over 100 %', 'loss_pct: { down: 120, up: 5 }', /loss_pct\.down: must be an integer from 0 to 100/],
    ['a window of 0 rounds', 'window: 0', /window: must be an integer from 1 to 100/],
  ])('refuses %s', (_what, setting, message) => {
    expect(inventoryErrorsOf(inventory(`defaults:\n  monitor: { ${setting} }`))).toMatch(message);
  });

  it('turns flap damping off with null', () => {
    const [gw] = parseInventoryText(inventory('defaults:\n  monitor: { flap: null }'), join(dir, 'b.yml')).gateways;
    expect(gw!.links[0]!.monitor.flap).toBeNull();
  });
});

describe('hooks and metrics', () => {
  const hook = join(dir, 'notify.sh');
  writeFileSync(hook, '#!/bin/sh\necho "$LBPROV_LINK $LBPROV_EVENT"\n');
  chmodSync(hook, 0o755);
  writeFileSync(join(dir, 'plain.sh'), '#!/bin/sh\n');

  it('reads hooks relative to the inventory file, their content with them; the gateway overrides the top level', () => {
    const [gw] = parseInventoryText(inventory('hooks: [./notify.sh]\nhook_timeout: 5'), join(dir, 'c.yml')).gateways;
    expect(gw!.hooks).toEqual([{ name: 'notify.sh', localPath: hook, content: '#!/bin/sh\necho "$LBPROV_LINK $LBPROV_EVENT"\n' }]);
    expect(gw!.hookTimeoutS).toBe(5);
    const [none] = parseInventoryText(inventory('hooks: [./notify.sh]', '\n    hooks: []\n    metrics_dir: null'), join(dir, 'd.yml')).gateways;
    expect(none!.hooks).toEqual([]);
    expect(none!.metricsDir).toBeNull();
  });

  it('refuses a hook that is missing, not executable, or named twice, naming file, line and key', () => {
    expect(inventoryErrorsOf(inventory('hooks: [./nope.sh]').replace(/^/, ''))).toMatch(/site\.yml:1: hooks\[0\]: \.\/nope\.sh does not exist/);
    const errors = (text: string) => {
      const file = join(dir, 'e.yml');
      writeFileSync(file, text);
      try {
        parseInventoryText(text, file);
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(errors(inventory('hooks: [./plain.sh]'))).toMatch(/e\.yml:1: hooks\[0\]: \.\/plain\.sh is not executable \(chmod \+x\)/);
    expect(errors(inventory(`hooks: [./notify.sh, ${hook}]`))).toMatch(/hooks\[1\]: another hook is also called notify\.sh/);
    expect(errors(inventory('hooks: ["../x.sh"]'))).toMatch(/hooks\[0\]: must be a path to a local executable/);
  });
});
