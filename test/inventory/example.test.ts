import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { loadInventory, selectGateways } from '../../src/inventory/index.js';

describe('inventories/example.yml', () => {
  it('is a valid inventory in the documented shape', () => {
    const inventory = loadInventory('example', resolve(import.meta.dirname, '../..'));
    expect(inventory.gateways.map((g) => g.name)).toEqual(['gw-a1', 'gw-a2']);
    expect(inventory.gateways[0]!.ssh.port).toBe(2222);
    expect(selectGateways(inventory, 'paris:!gw-a2').map((g) => g.name)).toEqual(['gw-a1']);
  });
});
