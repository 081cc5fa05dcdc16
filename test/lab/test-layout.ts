/** A lab described without building it: two gateways, links 3:1, every LAN client, unless overridden. */
import { describeLab, type LayoutInput } from '../../src/lab/layout.js';

export function testLayout(overrides: Partial<LayoutInput> = {}) {
  return describeLab({
    prefix: 'lbt1',
    dir: '/tmp/lab-test',
    inventoryPath: '/tmp/lab-test/inventory.yml',
    slots: [0, 1],
    weights: [3, 1],
    lanClients: 'all',
    baselineNat: true,
    ...overrides,
  });
}
