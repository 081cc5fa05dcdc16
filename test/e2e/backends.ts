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
  /** The rules of lbprov's balancing chain, as listed on the gateway. */
  balanceRules(t: LabRun): Promise<string[]>;
  /** argv that empties lbprov's prerouting chain by hand. */
  flushPre: string[];
  /** The boot-time file of the backend, and a line it must hold. */
  persisted: { path: string; contains: string };
  /** A template edit the kernel refuses at apply time, and the failing step's description. */
  broken: { template: string; edit: (text: string) => string; step: RegExp };
  /** A rule with a word break appended to the prerouting chain in a tampered plan, and how the refusal reads. */
  tamper: { rule: string; refusal: RegExp };
}

/** A firewalld-like native table: forwarding only what comes from the LAN and its replies. */
export const FOREIGN_NFT = `table inet filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "lan0" counter accept
    ct state established,related counter accept
  }
}
`;

/** Docker-like iptables rules (iptables-nft tables, as nft sees them). */
export const FOREIGN_IPTABLES_NAT = ['*nat', ':DOCKER - [0:0]', '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER', '-A POSTROUTING -s 192.0.2.128/25 ! -o docker0 -j MASQUERADE', '-A DOCKER -i docker0 -j RETURN', 'COMMIT', ''].join('\n');

/** Places both kinds of foreign rules on the lab's first gateway. */
export async function addForeignRules(t: LabRun): Promise<void> {
  await t.lab.execOnGateway(0, ['iptables-restore', '--noflush'], { input: FOREIGN_IPTABLES_NAT });
  await t.lab.execOnGateway(0, ['nft', '-f', '-'], { input: FOREIGN_NFT });
}

/** Packets the foreign forward chain let through (its LAN accept rule's counter). */
export async function foreignForwardPackets(t: LabRun): Promise<number> {
  const chain = await t.gw(['nft', 'list', 'chain', 'inet', 'filter', 'forward']);
  return Number(/iifname "lan0" counter packets (\d+)/.exec(chain)?.[1] ?? NaN);
}

const noCounters = (text: string) => text.replace(/\[\d+:\d+\]/g, '[0:0]').replace(/counter packets \d+ bytes \d+/g, 'counter');

/**
 * Table by table: iptables-nft makes a table (and a built-in chain) on first use and iptables
 * cannot delete either, so after lbprov's objects are gone an empty mangle table may stay; saved
 * per table, iptables shows every table with its built-in chains whether the kernel has it or not.
 */
async function iptablesSave(t: LabRun): Promise<string> {
  const tables = await Promise.all(['mangle', 'nat', 'filter'].map((table) => t.gw(['iptables-save', '-t', table])));
  return noCounters(tables.join('').split('\n').filter((l) => !l.startsWith('#')).join('\n'));
}

/**
 * `nft list ruleset` without lbprov's table (which it prints in one block, `table ip lbprov {` to
 * `}`). iptables-nft makes a table's built-in chain when a first rule goes into it and never
 * deletes it: once lbprov's iptables jumps are gone (a migration to nftables), such chains stay,
 * empty and accepting, and are left out here like the tables they leave empty (README: What lbprov
 * owns).
 */
function withoutLbprovTable(ruleset: string): string {
  return ruleset
    .replace(/^table ip lbprov \{\n[\s\S]*?^\}\n?/m, '')
    .replace(/^(table ip (?:filter|mangle|nat|raw|security) \{\n)([\s\S]*?)^\}\n?/gm, (_all, head: string, body: string) => {
      const chains = body.split(/\n\n/).filter((chain) => !/^\tchain \S+ \{\n\t\ttype [^\n]*policy accept;\n\t\}\n?$/.test(chain));
      return chains.length === 0 ? '' : `${head}${chains.join('\n\n').replace(/\n?$/, '\n')}}\n`;
    });
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
  async balanceRules(t) {
    return (await t.gw(['iptables-save', '-t', 'mangle'])).split('\n').filter((l) => l.startsWith('-A LBPROV_BALANCE'));
  },
  flushPre: ['iptables', '-t', 'mangle', '-F', 'LBPROV_PRE'],
  persisted: { path: '/etc/lbprov/persist/iptables.rules', contains: '#jump PREROUTING -j LBPROV_PRE' },
  broken: { template: 'iptables/nat.rules.hbs', edit: (s) => s.replace('COMMIT', '-A LBPROV_NAT -j LBPROV_MISSING\nCOMMIT'), step: /apply failed at step \d+ \(iptables nat[^)]*\); rolled back/ },
  tamper: { rule: '-j ACCEPT; reboot', refusal: /shell metacharacter outside a quoted string/ },
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
  async balanceRules(t) {
    const listing = (await t.lab.execOnGateway(0, ['nft', '-s', 'list', 'chain', 'ip', 'lbprov', 'balance'], { allowFailure: true })).stdout;
    return listing.split('\n').filter((l) => l.startsWith('\t\t')).map((l) => l.trim());
  },
  flushPre: ['nft', 'flush', 'chain', 'ip', 'lbprov', 'prerouting'],
  persisted: { path: '/etc/lbprov/persist/nftables.nft', contains: 'table ip lbprov {' },
  broken: {
    template: 'nftables/lbprov.nft.hbs',
    edit: (s) => s.replace('\t\ttype nat hook postrouting priority srcnat - 1; policy accept;\n', '\t\ttype nat hook postrouting priority srcnat - 1; policy accept;\n\t\tjump no_such_chain\n'),
    step: /apply failed at step \d+ \(nft ip lbprov[^)]*\); rolled back/,
  },
  tamper: { rule: 'accept; reboot', refusal: /one nftables rule \(no ";"/ },
};

export const BACKENDS: readonly BackendUnderTest[] = [IPTABLES, NFTABLES];
