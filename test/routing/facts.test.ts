/**
 * The routing facts section on the real ip in a namespace with 2,000 foreign routes (in the main
 * table and in a VPN-like table): lbprov reads its own tables, empty or missing ones included,
 * and the main table's default routes, and nothing of the foreign routes.
 */
import { describe, expect, it } from 'vitest';
import { parseRoutingFacts, routingFactsSections } from '../../src/routing/index.js';
import { ownedRanges } from '../../src/model/ownership.js';
import { skipNetns, withNetns } from '../helpers/netns.js';

const ranges = ownedRanges({ tableBase: 100, priorityBase: 100 });
const section = routingFactsSections('ipv4', ranges)[0]![1];

describe.skipIf(skipNetns)('the routing facts section on the real ip', () => {
  it('lists the owned tables and the main default routes, not the foreign routes', async () => {
    await withNetns((ns) => {
      const foreign = Array.from({ length: 2000 }, (_, i) => `route add 198.19.${i >> 8}.${i & 255}/32 via 198.51.100.2${i % 2 ? ' table 4242' : ''}`);
      ns.run(['ip', '-batch', '-'], [
        'link add wan1 type veth peer name wan1p',
        'link set wan1 up',
        'link set wan1p up',
        'addr add 198.51.100.1/28 dev wan1',
        'route add default via 198.51.100.2 dev wan1 metric 100',
        'route add unreachable default metric 500',
        'route add default via 198.51.100.3 dev wan1 table 101',
        'route add 203.0.113.0/24 via 198.51.100.4 dev wan1 table 102',
        ...foreign,
        '',
      ].join('\n'));
      const body = ns.run(['sh', '-c', section]);
      expect(body.length).toBeLessThan(10_000);
      const facts = parseRoutingFacts(body, 'ipv4', ranges, []);
      expect(facts.resources.filter((r) => r.kind === 'route-table')).toEqual([
        { kind: 'route-table', id: 'ipv4/route-table:101', family: 'ipv4', table: 101, routes: ['default via 198.51.100.3 dev wan1'] },
        { kind: 'route-table', id: 'ipv4/route-table:102', family: 'ipv4', table: 102, routes: ['203.0.113.0/24 via 198.51.100.4 dev wan1'] },
      ]);
      expect(facts.mainDefaultRoutes).toEqual([{ via: '198.51.100.2', dev: 'wan1', metric: 100 }]);
    });
  });
});
