/**
 * The lab's traffic kinds, for real: many LAN sources, TCP 80/8080, UDP 5060/10000 and a second
 * service address, each steered by hand-made policy routing and NAT on the gateway (no lbprov)
 * and checked by the source address the server saw. Needs root; with CI=true a lab that cannot be
 * built fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  countConnections,
  createLab,
  cutUpstream,
  labDown,
  LabError,
  resetServerCounts,
  restoreUpstream,
  serverCounts,
  type Lab,
  type LabGateway,
  type LabState,
} from '../../src/lab/index.js';
import { run } from '../../src/lab/run.js';
import { runCli, skipLab } from './harness.js';

const suite = skipLab ? 'lab traffic (skipped: needs root; CI=true makes this fail instead)' : 'lab traffic';
const SOURCES = 40;
/** Policy routing tables of these tests: one per link, each a default route out by it. */
const TABLES = [101, 102];
const FIRST_RULE = 200;

async function prefixLeftovers(prefix: string): Promise<string[]> {
  const namespaces = (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((line) => line.startsWith(`${prefix}-`));
  const links = (JSON.parse((await run(['ip', '-j', 'link', 'show'])).stdout) as { ifname: string }[]).filter((link) => link.ifname.startsWith(prefix));
  return [...namespaces, ...links.map((link) => link.ifname)];
}

/** A table per link and NAT on every link: what steers a connection is only which table it looks up. */
async function prepareGateway(lab: Lab, gateway: LabGateway): Promise<void> {
  const routes = gateway.links.map((link, index) => `route add default via ${link.nextHop} dev ${link.interface} table ${TABLES[index]}`);
  await lab.exec(gateway.ns, ['ip', '-batch', '-'], { input: `${routes.join('\n')}\n` });
  // Loose reverse path: replies to LAN traffic sent out by wan2 come in by wan2, which main does not route the server by.
  await lab.exec(gateway.ns, ['sysctl', '-qw', ...gateway.links.map((link) => `net.ipv4.conf.${link.interface}.rp_filter=2`)]);
  const nat = gateway.links.slice(1).map((link) => `-A POSTROUTING -o ${link.interface} -j MASQUERADE`);
  await lab.exec(gateway.ns, ['iptables-restore', '-w', '--noflush'], { input: `*nat\n${nat.join('\n')}\nCOMMIT\n` });
}

/** Adds `ip rule` selectors (each sent to a table) for the test's duration, at priorities of their own. */
async function withRules<T>(lab: Lab, gateway: LabGateway, rules: readonly [selector: string, table: number][], body: () => Promise<T>): Promise<T> {
  const batch = (verb: string): string => rules.map(([selector, table], index) => `rule ${verb} pref ${FIRST_RULE + index} iif ${gateway.lanInterface} ${selector} lookup ${table}\n`).join('');
  await lab.exec(gateway.ns, ['ip', '-batch', '-'], { input: batch('add') });
  try {
    return await body();
  } finally {
    await lab.exec(gateway.ns, ['ip', '-batch', '-'], { input: batch('del') });
  }
}

describe.skipIf(skipLab)(suite, () => {
  let lab: Lab;
  let gw: LabGateway;
  let isp1: string;
  let isp2: string;

  beforeAll(async () => {
    lab = await createLab({ lanSources: SOURCES });
    gw = lab.gateway(0);
    [isp1, isp2] = gw.links.map((link) => link.gatewayAddress) as [string, string];
    await prepareGateway(lab, gw);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('gives the LAN client every LAN source, lan0 both LAN subnets, the server both service addresses', async () => {
    expect(gw.lanSources).toHaveLength(SOURCES);
    expect(gw.lanSources[0]).toBe(gw.lanClientAddress);
    const addresses = async (ns: string, device: string): Promise<string[]> => {
      const [entry] = JSON.parse((await run(['ip', '-n', ns, '-j', '-4', 'addr', 'show', 'dev', device])).stdout) as { addr_info: { local: string }[] }[];
      return (entry?.addr_info ?? []).map((info) => info.local);
    };
    expect(await addresses(gw.lanClientNs as string, 'eth0')).toEqual(gw.lanSources);
    expect(await addresses(gw.ns, gw.lanInterface)).toEqual([gw.lanAddress, gw.secondLan?.lanAddress]);
    expect(await addresses(lab.state.server.ns, 'lo')).toEqual(['127.0.0.1', ...lab.state.server.serviceAddresses]);
  });

  it('keeps the old defaults: one source, TCP to the service port, out by main (ISP 1)', async () => {
    const counts = await countConnections(lab, 0, 20);
    expect(counts).toMatchObject({ errors: {}, attempted: 20, bySource: { [isp1]: 20 }, byLink: { isp1: 20, isp2: 0 }, unmatched: 0 });
    expect(counts.byLanSource).toEqual({ [gw.lanClientAddress]: { [isp1]: 20 } });
    expect(counts.byLanSourceLink).toEqual({ [gw.lanClientAddress]: { isp1: 20, isp2: 0 } });
  });

  it('steers each LAN source by its own rule, over TCP and UDP (400 connections from 40 sources)', async () => {
    // Sticky by hand: even-numbered sources leave by ISP 1, odd-numbered by ISP 2.
    const rules = gw.lanSources.map((source, index): [string, number] => [`from ${source}`, TABLES[index % 2] as number]);
    const expected = Object.fromEntries(gw.lanSources.map((source, index) => [source, index % 2 === 0 ? { isp1: 10, isp2: 0 } : { isp1: 0, isp2: 10 }]));
    await withRules(lab, gw, rules, async () => {
      for (const protocol of ['tcp', 'udp'] as const) {
        const counts = await countConnections(lab, 0, 400, { sources: gw.lanSources, protocol });
        console.log(`${protocol}: 400 connections from ${SOURCES} LAN sources in ${counts.elapsedMs} ms`);
        expect(counts.errors).toEqual({});
        expect(counts.byLanSourceLink).toEqual(expected);
        expect(counts.byLink).toEqual({ isp1: 200, isp2: 200 });
        expect(counts.bySource).toEqual({ [isp1]: 200, [isp2]: 200 });
        expect(counts.byLanSource[gw.lanSources[1] as string]).toEqual({ [isp2]: 10 });
      }
    });
  });

  it('answers TCP on 80 and 8080 and UDP on 5060 and 10000, each port steerable on its own, counted at the server', async () => {
    await resetServerCounts(lab);
    const rules: [string, number][] = [['ipproto tcp dport 8080', 102], ['ipproto udp dport 5060', 102]];
    const links = await withRules(lab, gw, rules, async () => {
      const byPort: Record<string, Record<string, number>> = {};
      for (const [protocol, port] of [['tcp', 80], ['tcp', 8080], ['udp', 5060], ['udp', 10000]] as const) {
        const counts = await countConnections(lab, 0, 10, { protocol, port, sources: gw.lanSources.slice(0, 2) });
        expect(counts.errors).toEqual({});
        byPort[`${protocol}/${port}`] = counts.byLink;
      }
      return byPort;
    });
    expect(links).toEqual({
      'tcp/80': { isp1: 10, isp2: 0 },
      'tcp/8080': { isp1: 0, isp2: 10 },
      'udp/5060': { isp1: 0, isp2: 10 },
      'udp/10000': { isp1: 10, isp2: 0 },
    });
    expect(await serverCounts(lab)).toEqual({ [isp1]: 20, [isp2]: 20 });
  });

  it('tells the two service addresses apart', async () => {
    const [a, b] = lab.state.server.serviceAddresses as [string, string];
    await withRules(lab, gw, [[`to ${b}`, 102]], async () => {
      for (const protocol of ['tcp', 'udp'] as const) {
        expect((await countConnections(lab, 0, 10, { protocol, destination: a })).byLink).toEqual({ isp1: 10, isp2: 0 });
        expect((await countConnections(lab, 0, 10, { protocol, destination: b })).byLink).toEqual({ isp1: 0, isp2: 10 });
      }
    });
  });

  it('counts a UDP datagram without an answer as ETIMEDOUT', async () => {
    await cutUpstream(lab, 0, 'isp1');
    try {
      const counts = await countConnections(lab, 0, 4, { protocol: 'udp', idleTimeoutMs: 500, concurrency: 4 });
      expect(counts).toMatchObject({ errors: { ETIMEDOUT: 4 }, attempted: 4, bySource: {}, byLink: { isp1: 0, isp2: 0 } });
      expect(counts.byLanSource).toEqual({ [gw.lanClientAddress]: {} });
    } finally {
      await restoreUpstream(lab, 0, 'isp1');
    }
    expect((await countConnections(lab, 0, 2, { protocol: 'udp' })).byLink).toEqual({ isp1: 2, isp2: 0 });
  });

  it('refuses more than 60 LAN sources before building anything', async () => {
    const prefix = `lbt${randomBytes(3).toString('hex').slice(0, 5)}`;
    const dir = mkdtempSync(join(tmpdir(), 'lbprov-e2e-'));
    try {
      await expect(createLab({ prefix, dir: join(dir, 'lab'), lanSources: 61 })).rejects.toThrow(LabError);
      expect(await prefixLeftovers(prefix)).toEqual([]);
      expect(existsSync(join(dir, 'lab'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds a lab with `lab up --lan-sources 3` and refuses 61', async () => {
    const work = mkdtempSync(join(tmpdir(), 'lbprov-e2e-'));
    const stateFile = join(work, 'lab', 'state.json');
    try {
      const refused = await runCli(['lab', 'up', '--lan-sources', '61', '--dir', 'lab', '--inventory', 'lab.yml'], {}, work);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('--lan-sources');
      const up = await runCli(['lab', 'up', '--lan-sources', '3', '--dir', 'lab', '--inventory', 'lab.yml'], {}, work);
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      expect(up.stdout).toMatch(/LAN sources of every LAN client: 198\.51\.100\.2 and 2 in 198\.51\.100\.128\/29 from 198\.51\.100\.130/);
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LabState;
      expect(state.gateways[0]?.lanSources).toEqual(['198.51.100.2', '198.51.100.130', '198.51.100.131']);
    } finally {
      await labDown(stateFile);
      rmSync(work, { recursive: true, force: true });
    }
  });
});
