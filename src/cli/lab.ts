import { resolve } from 'node:path';
import { countConnections, LAB_INITS, labDown, labUp, LINK_KINDS, loadLab, MAX_LAN_SOURCES, rebootGateway, type LinkKind } from '../lab/index.js';
import { InputError } from '../errors.js';
import { EXIT_OK } from './output.js';
import { FIREWALL_BACKENDS } from '../model/inventory.js';

const FIREWALL_SETTINGS = ['auto', ...FIREWALL_BACKENDS] as const;

export interface LabUpOptions {
  gateways: string;
  links: string;
  weights?: string;
  firewall?: string;
  linkKinds?: string;
  p2pDown?: boolean;
  lanSources?: string;
  init?: string;
  dir: string;
  inventory: string;
}

export interface LabDownOptions {
  dir: string;
}

function positiveInteger(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InputError('command line', flag, `expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function linkKind(value: string): LinkKind {
  const kind = LINK_KINDS.find((k) => k === value);
  if (!kind) throw new InputError('command line', '--link-kinds', `expected a list of ${LINK_KINDS.join(', ')}, got ${JSON.stringify(value)}`);
  return kind;
}

export async function labUpCommand(opts: LabUpOptions): Promise<number> {
  const weights = opts.weights?.split(',').map((w) => positiveInteger(w.trim(), '--weights'));
  const linkKinds = opts.linkKinds?.split(',').map((k) => linkKind(k.trim()));
  if (weights && linkKinds && weights.length !== linkKinds.length) {
    throw new InputError('command line', '--link-kinds', `${linkKinds.length} link kinds for ${weights.length} weights`);
  }
  const firewall = opts.firewall === undefined ? undefined : FIREWALL_SETTINGS.find((f) => f === opts.firewall);
  if (opts.firewall !== undefined && !firewall) throw new InputError('command line', '--firewall', `expected one of ${FIREWALL_SETTINGS.join(', ')}, got ${JSON.stringify(opts.firewall)}`);
  const lanSources = opts.lanSources === undefined ? undefined : positiveInteger(opts.lanSources, '--lan-sources');
  if (lanSources !== undefined && lanSources > MAX_LAN_SOURCES) throw new InputError('command line', '--lan-sources', `at most ${MAX_LAN_SOURCES}, got ${lanSources}`);
  const init = opts.init === undefined ? undefined : LAB_INITS.find((kind) => kind === opts.init);
  if (opts.init !== undefined && !init) throw new InputError('command line', '--init', `expected one of ${LAB_INITS.join(', ')}, got ${JSON.stringify(opts.init)}`);
  const started = performance.now();
  const lab = await labUp({
    gateways: positiveInteger(opts.gateways, '--gateways'),
    links: weights?.length ?? linkKinds?.length ?? positiveInteger(opts.links, '--links'),
    ...(weights ? { weights } : {}),
    ...(firewall ? { firewall } : {}),
    ...(linkKinds ? { linkKinds } : {}),
    ...(opts.p2pDown ? { p2pDown: true } : {}),
    ...(lanSources !== undefined ? { lanSources } : {}),
    ...(init ? { init } : {}),
    dir: opts.dir,
    inventoryPath: opts.inventory,
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const kind = lab.state.init === 'systemd' ? 'systemd gateway(s)' : 'gateway(s)';
  process.stdout.write(`lab up: ${lab.gateways.length} ${kind} in ${seconds} s; inventory ${lab.inventoryPath}\n`);
  for (const gw of lab.gateways) {
    const links = gw.links.map((l) => `${l.name}:${l.interface}${l.kind === 'static' ? '' : ` (${l.kind}${l.kind === 'p2p' && !l.connected ? ', down' : ` ${l.gatewayAddress}`})`}`);
    process.stdout.write(`  ${gw.name}  ssh root@${gw.mgmtAddress}  links ${links.join(' ')}\n`);
  }
  const first = lab.gateways[0];
  if (first?.secondLan !== undefined) {
    process.stdout.write(`  LAN sources of every LAN client: ${first.lanClientAddress} and ${first.lanSources.length - 1} in ${first.secondLan.cidr} from ${first.lanSources[1]}\n`);
  }
  process.stdout.write(`remove it with: lbprov lab down --dir ${opts.dir}\n`);
  return EXIT_OK;
}

export async function labDownCommand(opts: LabDownOptions): Promise<number> {
  const removed = await labDown(resolve(opts.dir, 'state.json'));
  process.stdout.write(removed ? 'lab down: removed\n' : `lab down: no lab in ${opts.dir}\n`);
  return EXIT_OK;
}

export interface LabRebootOptions {
  dir: string;
  gateway?: string;
  hard?: boolean;
}

/** Reboots systemd gateways one after another (all of them, or the one named) and shows how long each took to answer SSH again. */
export async function labRebootCommand(opts: LabRebootOptions): Promise<number> {
  const lab = loadLab(resolve(opts.dir, 'state.json'));
  const gateways = opts.gateway !== undefined ? [lab.gateway(opts.gateway)] : lab.gateways;
  for (const gw of gateways) {
    const { ms } = await rebootGateway(lab, gw.name, { hard: opts.hard === true });
    process.stdout.write(`${gw.name}: ${opts.hard ? 'power cut' : 'rebooted'}, sshd answering after ${ms} ms\n`);
  }
  return EXIT_OK;
}

export interface LabTrafficOptions {
  dir: string;
  gateway: string;
  connections: string;
}

/** Opens new TCP connections from a lab gateway's LAN client and shows which link each left by. */
export async function labTrafficCommand(opts: LabTrafficOptions): Promise<number> {
  const lab = loadLab(resolve(opts.dir, 'state.json'));
  const n = positiveInteger(opts.connections, '--connections');
  const counts = await countConnections(lab, opts.gateway, n);
  const gw = lab.gateway(opts.gateway);
  process.stdout.write(`${n} new connections from ${gw.name}'s LAN client in ${counts.elapsedMs} ms, by the source address the server saw:\n`);
  for (const link of gw.links) {
    const got = counts.byLink[link.name] ?? 0;
    process.stdout.write(`  ${link.name.padEnd(6)} ${link.gatewayAddress.padEnd(15)} weight ${String(link.weight).padEnd(3)} ${String(got).padStart(6)}  ${((100 * got) / n).toFixed(1)}%\n`);
  }
  if (counts.unmatched > 0) process.stdout.write(`  other addresses: ${counts.unmatched}\n`);
  const failed = Object.entries(counts.errors);
  if (failed.length > 0) process.stdout.write(`  failed: ${failed.map(([code, k]) => `${code} ${k}`).join(', ')}\n`);
  return failed.length > 0 ? 1 : EXIT_OK;
}
