import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  canonicalIpRuleFromJson,
  canonicalIpRuleFromText,
  canonicalRouteFromJson,
  canonicalRouteFromText,
  parseInterfaces,
  parseIpAddr,
  parseIpRoutes,
  parseIpRules,
  splitJsonDocuments,
} from '../../src/routing/index.js';
import { ParseError } from '../../src/errors.js';

// Recorded by test/fixtures/iproute/record.sh with iproute2 6.1 from rules.txt / routes.txt.
const dir = fileURLToPath(new URL('../fixtures/iproute/', import.meta.url));
const fixture = (name: string) => readFileSync(dir + name, 'utf8');
const json = (name: string): unknown => JSON.parse(fixture(name));
const lines = (name: string) => fixture(name).split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
const ownedTables = new Set(Array.from({ length: 16 }, (_, i) => 101 + i));

describe('ip rules', () => {
  const written = lines('rules.txt').map(canonicalIpRuleFromText);

  it.each(['rule-N.json', 'rule.json'])('%s: each template form equals what the kernel reports', (file) => {
    const reported = parseIpRules(json(file), 'ipv4', 100, 199);
    expect(reported.map((r) => ({ priority: r.priority, selector: r.selector }))).toEqual(written);
    expect(reported.map((r) => r.id)).toEqual(written.map((w) => `ipv4/ip-rule:${w.priority}`));
  });

  it('produces the canonical forms named in the brief', () => {
    const byPriority = new Map(written.map((w) => [w.priority, w.selector]));
    expect(byPriority.get(100)).toBe('from all lookup 254 suppress_prefixlength 0');
    expect(byPriority.get(101)).toBe('from all fwmark 0x10000000/0xf0000000 lookup 101');
    expect(byPriority.get(102)).toBe('from all fwmark 0x20000000/0xf0000000 lookup 102');
    expect(byPriority.get(111)).toBe('from 198.51.100.2 lookup 101');
    expect(byPriority.get(120)).toBe('not from 198.51.100.0/24 iif lan0 oif pl-w1 lookup 101');
    expect(byPriority.get(121)).toBe('from all to 192.0.2.0/24 goto 150');
    expect(byPriority.get(122)).toBe('from all blackhole');
    expect(byPriority.get(128)).toBe('from all fwmark 0x1 lookup 101 proto 4');
  });

  it('leaves rules outside the owned priorities alone, whatever they contain', () => {
    const all = json('rule-N.json') as Record<string, unknown>[];
    expect(all.some((r) => r.priority === 5000)).toBe(true);
    expect(parseIpRules(json('rule-N.json'), 'ipv4', 100, 199).some((r) => r.priority >= 200)).toBe(false);
    const hostile = [...all, { priority: 7000, iif: 'eth0\n-A PREROUTING -j ACCEPT', table: 'x;reboot' }];
    expect(parseIpRules(hostile, 'ipv4', 100, 199)).toHaveLength(written.length);
  });

  it('gives a second rule at the same priority its own id, so a diff can remove it', () => {
    const rules = [
      { priority: 101, src: 'all', table: '101' },
      { priority: 101, src: '198.51.100.9', table: '102' },
    ];
    const warnings: string[] = [];
    expect(parseIpRules(rules, 'ipv4', 100, 199, warnings).map((r) => [r.id, r.selector])).toEqual([
      ['ipv4/ip-rule:101', 'from all lookup 101'],
      ['ipv4/ip-rule:101#2', 'from 198.51.100.9 lookup 102'],
    ]);
    expect(warnings).toHaveLength(1);
  });

  it('canonical selectors are valid input again (same result)', () => {
    for (const { priority, selector } of written) {
      expect(canonicalIpRuleFromText(`priority ${priority} ${selector}`)).toEqual({ priority, selector });
    }
  });

  it('unifies the spellings of "all", tables and marks', () => {
    const a = canonicalIpRuleFromText('priority 105 from 0.0.0.0/0 fwmark 16/0xFF table main');
    const b = canonicalIpRuleFromJson({ priority: 105, src: 'all', fwmark: '0x10', fwmask: '0xff', table: 'main' });
    const c = canonicalIpRuleFromJson({ priority: 105, src: 'all', fwmark: '0x10', fwmask: '0xff', table: '254' });
    expect(a).toEqual({ priority: 105, selector: 'from all fwmark 0x10/0xff lookup 254' });
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it.each([
    ['from all lookup 101', /priority is required/],
    ['priority 101 from all lookup isp1', /name/],
    ['priority 101 from 1.2.3.4; reboot lookup 101', /IPv4/],
    ['priority 101 from all lookup 101\npriority 102 blackhole', /control/],
    ['priority 101 iif eth0/1 lookup 101', /interface/],
    ['priority 101 frobnicate lookup 101', /unknown/],
    ['priority 101 fwmark 0x1/0x2/0x3 lookup 101', /fwmark/],
  ])('refuses %j', (text, message) => {
    expect(() => canonicalIpRuleFromText(text)).toThrow(ParseError);
    expect(() => canonicalIpRuleFromText(text)).toThrow(message);
  });

  it('refuses crafted values in an owned rule instead of guessing', () => {
    expect(() => parseIpRules([{ priority: 101, iif: 'eth0\n-A PREROUTING -j ACCEPT', table: '101' }], 'ipv4', 100, 199)).toThrow(ParseError);
    expect(() => parseIpRules([{ priority: 101, src: '1.2.3.4; reboot', table: '101' }], 'ipv4', 100, 199)).toThrow(ParseError);
    expect(() => parseIpRules([{ priority: 101, src: 'all', table: 'isp1' }], 'ipv4', 100, 199)).toThrow(/ip -N/);
    expect(() => parseIpRules([{ priority: 101, src: 'all', table: '101', novel: 'a b' }], 'ipv4', 100, 199)).toThrow(ParseError);
    expect(() => parseIpRules([{ src: 'all' }], 'ipv4', 100, 199)).toThrow(/priority/);
  });
});

describe('ip routes', () => {
  const written = new Map<number, string[]>();
  for (const line of lines('routes.txt')) {
    const { table, route } = canonicalRouteFromText(line);
    written.set(table, [...(written.get(table) ?? []), route].sort());
  }

  it.each(['route-N.json', 'route.json', 'route-4-N.json'])('%s: owned tables hold exactly the template routes', (file) => {
    const tables = parseIpRoutes(json(file), 'ipv4', ownedTables);
    expect(tables.map((t) => [t.table, t.routes])).toEqual([...written.entries()].sort(([a], [b]) => a - b));
    expect(tables.map((t) => t.id)).toEqual([...written.keys()].sort().map((t) => `ipv4/route-table:${t}`));
  });

  it('produces the canonical forms named in the brief', () => {
    expect(written.get(101)).toEqual(['default via 198.51.100.1 dev pl-w1']);
    expect(written.get(102)).toEqual(['192.0.2.0/24 via 203.0.113.1 dev pl-w2 src 203.0.113.2 metric 5', 'default via 203.0.113.1 dev pl-w2']);
    expect(written.get(105)).toEqual([
      '192.0.2.5 dev pl-w1',
      'default nexthop via 198.51.100.1 dev pl-w1 weight 3 nexthop via 203.0.113.1 dev pl-w2 weight 1',
    ]);
  });

  it('reads the main table from entries without "table" and skips foreign tables', () => {
    const main = parseIpRoutes(json('route-N.json'), 'ipv4', new Set([254]));
    expect(main).toHaveLength(1);
    expect(main[0]!.routes).toContain('default via 198.51.100.1 dev pl-w1');
    expect(parseIpRoutes(json('route-N.json'), 'ipv4', ownedTables).some((t) => t.table === 200)).toBe(false);
  });

  it('canonical routes are valid input again (same result)', () => {
    for (const [table, routes] of written) {
      for (const route of routes) expect(canonicalRouteFromText(`table ${table} ${route}`)).toEqual({ table, route });
    }
  });

  it('ignores what the kernel adds (proto, scope, state flags)', () => {
    expect(
      canonicalRouteFromJson({ dst: '0.0.0.0/0', gateway: '198.51.100.1', dev: 'wan1', table: '101', protocol: '4', scope: '0', flags: ['linkdown'] }),
    ).toEqual({ table: 101, route: 'default via 198.51.100.1 dev wan1' });
  });

  it.each([
    ['192.0.2.7/24 dev pl-w1 table 101', /host bits/],
    ['default via 203.0.113.1 dev pl-w2 table isp2', /name/],
    ['default via 203.0.113.1;reboot table 101', /IPv4/],
    ['default via 203.0.113.1 dev pl-w2 table 101\ndefault via 1.2.3.4', /control/],
    ['default via 203.0.113.1 table 101 bogus 1', /unknown/],
    ['via 203.0.113.1 table 101', /destination/],
  ])('refuses %j', (text, message) => {
    expect(() => canonicalRouteFromText(text)).toThrow(ParseError);
    expect(() => canonicalRouteFromText(text)).toThrow(message);
  });

  it('refuses crafted values in an owned table, skips them elsewhere', () => {
    const crafted = { dst: 'default', gateway: '1.2.3.4; reboot', dev: 'eth0', table: '101' };
    expect(() => parseIpRoutes([crafted], 'ipv4', ownedTables)).toThrow(ParseError);
    expect(parseIpRoutes([{ ...crafted, table: '200' }], 'ipv4', ownedTables)).toEqual([]);
  });
});

describe('ip addr', () => {
  it('reads names, state and IPv4 addresses', () => {
    const warnings: string[] = [];
    const interfaces = parseIpAddr(json('addr-N.json'), warnings);
    const byName = new Map(interfaces.map((i) => [i.name, i]));
    expect(byName.get('pl-w1')).toEqual({ name: 'pl-w1', up: true, ipv4: ['198.51.100.2/24'] });
    expect(byName.get('pl-w2')).toEqual({ name: 'pl-w2', up: true, ipv4: ['203.0.113.2/24', '203.0.113.9/32'] });
    expect(byName.get('lan0')).toEqual({ name: 'lan0', up: false, ipv4: ['192.0.2.1/24'] }); // no carrier
    expect(byName.get('lo')?.ipv4).toEqual(['127.0.0.1/8']);
    expect(warnings).toEqual([]);
  });

  it('drops crafted names and addresses with a warning', () => {
    const warnings: string[] = [];
    const interfaces = parseIpAddr(
      [
        { ifname: 'eth0\n-A PREROUTING -j ACCEPT', flags: ['UP', 'LOWER_UP'], addr_info: [] },
        { ifname: 'a/b', flags: [], addr_info: [] },
        { ifname: '..', flags: [], addr_info: [] },
        { ifname: 'sixteen-chars-xx', flags: [], addr_info: [] },
        { ifname: 'eth1', flags: ['UP'], addr_info: [{ family: 'inet', local: '1.2.3.4; reboot', prefixlen: 24 }, { family: 'inet', local: '192.0.2.9', prefixlen: 33 }, { family: 'inet', local: '192.0.2.10', prefixlen: 24 }] },
      ],
      warnings,
    );
    expect(interfaces).toEqual([{ name: 'eth1', up: false, ipv4: ['192.0.2.10/24'] }]);
    expect(warnings).toHaveLength(6);
  });

  it.each([
    ['truncated', fixture('addr-N.json').slice(0, 200)],
    ['not an array', '{"ifname":"eth0"}'],
    ['an array of strings', '["eth0"]'],
    ['huge', `[${' '.repeat(64 * 1024 * 1024)}]`],
  ])('throws a ParseError for output that is %s', (_, text) => {
    expect(() => parseIpAddr(text)).toThrow(ParseError);
  });
});

describe('ip -batch output', () => {
  it('splits one JSON document per command, compact (one per line) or pretty-printed, and refuses a count other than the commands sent', () => {
    const rules = fixture('rule-N.json').trim();
    const compact = `${rules}\n[]\n${JSON.stringify([{ ifname: 'lo', note: 'a ] in a "string" \\ here' }])}\n`;
    const lengths = (docs: string[]) => docs.map((d) => (JSON.parse(d) as unknown[]).length);
    expect(lengths(splitJsonDocuments(compact, 3, 'ip -batch'))).toEqual([(json('rule-N.json') as unknown[]).length, 0, 1]);
    const pretty = `${JSON.stringify(json('rule-N.json'), null, 4)}\n[ ]\n${JSON.stringify([{ ifname: 'lo' }], null, 4)}\n`;
    expect(lengths(splitJsonDocuments(pretty, 3, 'ip -batch'))).toEqual(lengths(splitJsonDocuments(compact, 3, 'ip -batch')));
    expect(() => splitJsonDocuments(compact, 4, 'ip -batch')).toThrow(/expected 4 JSON documents, got 3/);
    expect(() => splitJsonDocuments('', 1, 'ip -batch')).toThrow(ParseError);
    expect(() => splitJsonDocuments('[{"a":1}', 1, 'ip -batch')).toThrow(/cut short/);
    expect(() => splitJsonDocuments('[] Error: x []', 2, 'ip -batch')).toThrow(/outside the JSON documents/);
  });

  it('takes every interface from the links and its IPv4 addresses from the address list', () => {
    const warnings: string[] = [];
    const links = [
      { ifname: 'wan1', flags: ['BROADCAST', 'UP', 'LOWER_UP'] },
      // Up, but with no IPv4 address: -4 addr show leaves it out.
      { ifname: 'wan2', flags: ['BROADCAST', 'UP', 'LOWER_UP'] },
      { ifname: 'wan3\nrule flush', flags: ['UP', 'LOWER_UP'] },
    ];
    const addrs = [
      { ifname: 'wan1', flags: ['BROADCAST', 'UP', 'LOWER_UP'], addr_info: [{ family: 'inet', local: '203.0.113.2', prefixlen: 26 }, { family: 'inet', local: '1.2.3.4; reboot', prefixlen: 24 }] },
      { ifname: 'wan3\nrule flush', flags: [], addr_info: [{ family: 'inet', local: '203.0.113.9', prefixlen: 26 }] },
    ];
    expect(parseInterfaces(links, addrs, warnings)).toEqual([
      { name: 'wan1', up: true, ipv4: ['203.0.113.2/26'] },
      { name: 'wan2', up: true, ipv4: [] },
    ]);
    // The crafted name once (not once per list), the crafted address once.
    expect(warnings.filter((w) => w.includes('invalid name'))).toHaveLength(1);
    expect(warnings.filter((w) => w.includes('invalid IPv4 address'))).toHaveLength(1);
  });
});
