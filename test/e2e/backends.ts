/**
 * The end-to-end suites run once per firewall backend: what differs between them, in one place
 * (the ids of lbprov's objects, how to read the packet filter, how to break or flush lbprov's
 * objects by hand). A suite takes a BackendUnderTest as its parameter.
 */
import type { LabRun } from './harness.js';

export interface BackendUnderTest {
  name: 'iptables' | 'nftables';
  /** Resource ids of lbprov's firewall objects in plans. */
  ids: { balance: string; pre: string; nat: string };
  /** lbprov's firewall objects as the gateway lists them, counters stripped. */
  lbprovState(t: LabRun): Promise<string>;
  /** Everything the packet filter holds (every table, foreign ones included), counters stripped. */
  fullState(t: LabRun): Promise<string>;
  /** The packet filter without lbprov's objects: what must stay byte-for-byte the same. */
  foreignState(t: LabRun): Promise<string>;
  /** Shell that removes lbprov's firewall objects by hand (part of what a reboot loses). */
  forget: string;
  /** Deletes the rule that marks new connections arriving on wan2; returns the id that then needs an update. */
  deleteInboundRule(t: LabRun): Promise<string>;
}

const noCounters = (text: string) => text.replace(/\[\d+:\d+\]/g, '[0:0]').replace(/counter packets \d+ bytes \d+/g, 'counter');

async function iptablesSave(t: LabRun): Promise<string> {
  return noCounters((await t.gw(['iptables-save'])).split('\n').filter((l) => !l.startsWith('#')).join('\n'));
}

/** `nft list ruleset` without lbprov's table (which it prints in one block, `table ip lbprov {` to `}`). */
function withoutLbprovTable(ruleset: string): string {
  return ruleset.replace(/^table ip lbprov \{\n[\s\S]*?^\}\n?/m, '');
}

export const IPTABLES: BackendUnderTest = {
  name: 'iptables',
  ids: { balance: 'ipv4/iptables-chain:mangle:LBPROV_BALANCE', pre: 'ipv4/iptables-chain:mangle:LBPROV_PRE', nat: 'ipv4/iptables-chain:nat:LBPROV_NAT' },
  async lbprovState(t) {
    return (await iptablesSave(t)).split('\n').filter((l) => l.includes('LBPROV_')).join('\n');
  },
  fullState: iptablesSave,
  async foreignState(t) {
    return (await iptablesSave(t)).split('\n').filter((l) => !l.includes('LBPROV_')).join('\n');
  },
  forget: [
    'for j in "mangle PREROUTING LBPROV_PRE" "mangle OUTPUT LBPROV_OUT" "nat POSTROUTING LBPROV_NAT"; do set -- $j; iptables -w -t $1 -D $2 -j $3; done',
    'for c in LBPROV_PRE LBPROV_BALANCE LBPROV_OUT; do iptables -w -t mangle -F $c; done',
    'for c in LBPROV_PRE LBPROV_BALANCE LBPROV_OUT; do iptables -w -t mangle -X $c; done',
    'iptables -w -t nat -F LBPROV_NAT; iptables -w -t nat -X LBPROV_NAT',
  ].join('\n'),
  async deleteInboundRule(t) {
    await t.gw(['iptables', '-t', 'mangle', '-D', 'LBPROV_PRE', '-i', 'wan2', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'MARK', '--set-xmark', '0x20000000/0xf0000000']);
    return 'ipv4/iptables-chain:mangle:LBPROV_PRE';
  },
};

export const NFTABLES: BackendUnderTest = {
  name: 'nftables',
  ids: { balance: 'ipv4/nft-chain:balance', pre: 'ipv4/nft-chain:prerouting', nat: 'ipv4/nft-chain:postrouting' },
  async lbprovState(t) {
    return noCounters((await t.lab.execOnGateway(0, ['nft', '-s', 'list', 'table', 'ip', 'lbprov'], { allowFailure: true })).stdout);
  },
  async fullState(t) {
    // iptables-nft's tables show in the ruleset too; nft warns about them on stderr, not stdout.
    return noCounters((await t.lab.execOnGateway(0, ['nft', '-s', 'list', 'ruleset'])).stdout);
  },
  async foreignState(t) {
    return withoutLbprovTable(await this.fullState(t));
  },
  forget: 'nft delete table ip lbprov',
  async deleteInboundRule(t) {
    const listing = (await t.lab.execOnGateway(0, ['nft', '-a', 'list', 'chain', 'ip', 'lbprov', 'prerouting'])).stdout;
    const handle = /iifname "wan2" ct state new jump mark_isp2 # handle (\d+)/.exec(listing)?.[1];
    if (!handle) throw new Error(`no wan2 rule in lbprov's prerouting:\n${listing}`);
    await t.gw(['nft', 'delete', 'rule', 'ip', 'lbprov', 'prerouting', 'handle', handle]);
    return 'ipv4/nft-chain:prerouting';
  },
};

export const BACKENDS: readonly BackendUnderTest[] = [IPTABLES, NFTABLES];
