/**
 * The nftables reader against what the real nft 1.0.6 printed (test/fixtures/nftables/record.mjs):
 * lbprov's rendered table and nft's listing of it are the same chains and rules, for every mask and
 * weight shape recorded, so a converged gateway plans to no change.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hex8, nftMarkSet, parseNftTable } from '../../../src/firewall/nftables/index.js';
import { nftResources } from '../../../src/firewall/nftables/owned.js';
import { ParseError } from '../../../src/errors.js';

const dir = fileURLToPath(new URL('../../fixtures/nftables/', import.meta.url));
const fixture = (name: string) => readFileSync(dir + name, 'utf8');
const CASES = ['m0xf0000000-w3-1', 'm0xf0000000-w5-2-1', 'm0xf0000000-w1-1-1-1-1-1-1-1', 'm0xff-w3-1', 'm0x3f00-w4-3-2-1', 'm0x3-w2-1-1'];
/** The boot payload without its replace-the-table lines. */
const renderedTable = (name: string) => fixture(`${name}.rendered.nft`).split('\n').filter((l) => !/^(table ip lbprov \{\}|delete table ip lbprov)$/.test(l)).join('\n');

describe('parseNftTable', () => {
  it.each(CASES)('%s: the listing nft printed is the table lbprov rendered', (name) => {
    const listed = parseNftTable(fixture(`${name}.listed.txt`), 'listed');
    expect(listed).not.toBeNull();
    expect(listed).toEqual(parseNftTable(renderedTable(name), 'rendered'));
    expect(nftResources(listed).map((r) => r.id)).toEqual(expect.arrayContaining(['ipv4/nft-table:lbprov', 'ipv4/nft-chain:prerouting', 'ipv4/nft-chain:balance']));
  });

  it.each(CASES)('%s: the JSON listing has the same chains and rules', (name) => {
    const json = JSON.parse(fixture(`${name}.listed.json`)) as { nftables: Record<string, { name?: string; chain?: string }>[] };
    const text = parseNftTable(fixture(`${name}.listed.txt`), 'listed')!;
    const chains = json.nftables.flatMap((o) => (o.chain ? [o.chain.name] : []));
    expect(chains).toEqual(text.chains.map((c) => c.name));
    const rulesPerChain = (chain: string) => json.nftables.filter((o) => o.rule && o.rule.chain === chain).length;
    for (const c of text.chains) expect(rulesPerChain(c.name), c.name).toBe(c.rules.length);
  });

  it('reads a swapped-in failover variant as the same table with only the balance chain changed', () => {
    const full = parseNftTable(fixture('m0xf0000000-w3-1.listed.txt'), 'full')!;
    for (const [mask, rule] of [['1', 'jump mark_isp1'], ['2', 'jump mark_isp2'], ['3', full.chains.find((c) => c.name === 'balance')!.rules[0]]] as const) {
      const swapped = parseNftTable(fixture(`variant-${mask}.listed.txt`), 'swapped')!;
      expect(swapped.chains.map((c) => (c.name === 'balance' ? { ...c, rules: [rule] } : c))).toEqual(swapped.chains);
      expect(swapped.chains.filter((c) => c.name !== 'balance')).toEqual(full.chains.filter((c) => c.name !== 'balance'));
    }
  });

  it('reads no table from nothing, and an empty table as a table', () => {
    expect(parseNftTable('', 'x')).toBeNull();
    expect(parseNftTable('table ip lbprov {\n}\n', 'x')).toEqual({ family: 'ipv4', name: 'lbprov', sets: [], chains: [] });
  });

  it.each([
    ['a newline smuggled into a rule', 'table ip lbprov {\n\tchain a {\n\t\tjump b\u000b-j x\n\t}\n}\n'],
    ['a set over several lines', 'table ip lbprov {\n\tchain a {\n\t\tip saddr {\n\t\t\t192.0.2.1 }\n\t}\n}\n'],
    ['a base chain lbprov does not write', 'table ip lbprov {\n\tchain a {\n\t\ttype filter hook ingress device "x" priority 0; policy accept;\n\t}\n}\n'],
    ['a truncated table', 'table ip lbprov {\n\tchain a {\n\t\tjump b\n'],
    ['text after the table', 'table ip lbprov {\n}\nreboot\n'],
    ['another family', 'table inet lbprov {\n}\n'],
    ['a chain twice', 'table ip lbprov {\n\tchain a {\n\t}\n\tchain a {\n\t}\n}\n'],
  ])('refuses %s', (_name, text) => {
    expect(() => parseNftTable(text, 'x')).toThrow(ParseError);
  });
});

describe('mark constants in the form nft prints them', () => {
  it.each([
    [0xf0000000, 0x10000000, 'meta mark set meta mark & 0x1fffffff | 0x10000000'],
    [0xf0000000, 0x20000000, 'meta mark set meta mark & 0x2fffffff | 0x20000000'],
    [0xff, 0x1, 'meta mark set meta mark & 0xffffff01 | 0x00000001'],
    [0x3f00, 0x100, 'meta mark set meta mark & 0xffffc1ff | 0x00000100'],
    [0xc000, 0x4000, 'meta mark set meta mark & 0xffff7fff | 0x00004000'],
    [0x3, 0x3, 'meta mark set meta mark | 0x00000003'],
  ])('mask %s mark %s', (mask, value, text) => {
    expect(nftMarkSet('meta mark', mask, value)).toBe(text);
  });

  it('pads to 8 hex digits', () => {
    expect(hex8(0x1)).toBe('0x00000001');
    expect(hex8(0xf0000000)).toBe('0xf0000000');
  });
});
