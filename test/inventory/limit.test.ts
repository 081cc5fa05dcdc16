import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { parseInventoryText, selectGateways } from '../../src/inventory/index.js';

const names = ['gw-paris-1', 'gw-paris-2', 'gw-lyon-1', 'gw-lyon-2', 'gw-lyon-3', 'edge'];
const inventory = parseInventoryText(
  `gateways:\n${names
    .map(
      (name, i) => `  ${name}:
    host: 192.0.2.${i + 1}
    lan: { interfaces: [lan0] }
    links:
      - { name: a, interface: wan0, gateway: 198.51.100.1, weight: 1 }
      - { name: b, interface: wan1, gateway: 203.0.113.1, weight: 1 }
`,
    )
    .join('')}groups:
  paris: [gw-paris-1, gw-paris-2]
  lyon: [gw-lyon-1, gw-lyon-2, gw-lyon-3]
  france: [gw-paris-1, gw-paris-2, gw-lyon-1, gw-lyon-2, gw-lyon-3]
  lab: [edge, gw-lyon-1]
`,
  'limit.yml',
);

const select = (limit?: string) => selectGateways(inventory, limit).map((g) => g.name);

describe('selectGateways', () => {
  it('selects every gateway without a limit, or with all / *', () => {
    expect(select()).toEqual(names);
    expect(select('all')).toEqual(names);
    expect(select('*')).toEqual(names);
  });

  it.each([
    ['paris,lyon:!gw-lyon-3', ['gw-paris-1', 'gw-paris-2', 'gw-lyon-1', 'gw-lyon-2']],
    ['!gw-lyon-3,paris,lyon', ['gw-paris-1', 'gw-paris-2', 'gw-lyon-1', 'gw-lyon-2']],
    ['gw-lyon-*', ['gw-lyon-1', 'gw-lyon-2', 'gw-lyon-3']],
    ['gw-*-1', ['gw-paris-1', 'gw-lyon-1']],
    ['gw-lyon-?:edge', ['gw-lyon-1', 'gw-lyon-2', 'gw-lyon-3', 'edge']],
    ['par*', ['gw-paris-1', 'gw-paris-2']],
    ['edge,gw-paris-2', ['gw-paris-2', 'edge']],
    ['!france', ['edge']],
    ['!paris:!lyon', ['edge']],
    ['france:&lab', ['gw-lyon-1']],
    ['lyon:&lab:paris', ['gw-lyon-1']],
    ['all:!gw-*-2', ['gw-paris-1', 'gw-lyon-1', 'gw-lyon-3', 'edge']],
    [' paris , edge ', ['gw-paris-1', 'gw-paris-2', 'edge']],
  ])('%s', (limit, expected) => {
    expect(select(limit)).toEqual(expected);
  });

  it.each([
    ['gw-nope', /"gw-nope".*matches no gateway or group/],
    ['paris,!gw-lyon-33', /"gw-lyon-33".*matches no gateway or group/],
    ['nice*', /"nice\*".*matches no gateway/],
    ['paris:!paris', /selects no gateway/],
    ['lyon:&lab:!gw-lyon-1', /selects no gateway/],
    ['', /names no gateway or group/],
    [',:', /names no gateway or group/],
  ])('refuses %j', (limit, message) => {
    expect(() => select(limit)).toThrow(InputError);
    expect(() => select(limit)).toThrow(message);
  });

  it('names --limit as the location', () => {
    try {
      select('gw-nope');
      expect.unreachable();
    } catch (error) {
      expect((error as InputError).location).toBe('--limit');
    }
  });
});
