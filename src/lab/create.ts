/** Building a lab: names and addresses first (layout.ts), then namespaces, keys, sshd, the server, dynamic links. */
import type { FirewallSetting } from '../model/inventory.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { AGENT_FILES, AGENT_SOURCES } from './agents.js';
import { LabLocks, releaseLocks } from './allocator.js';
import { startDhcpLink } from './dhcp.js';
import { LabError } from './errors.js';
import { claimNeighbourTable } from './neighbours.js';
import { renderLabInventory } from './inventory.js';
import { Lab } from './lab.js';
import { defaultWeights, describeLab, PREFIX_PATTERN, type LanClientChoice } from './layout.js';
import { buildNetwork } from './network.js';
import { connect } from './p2p.js';
import { run } from './run.js';
import { prepareGatewayFilesystem, renderSshdConfig, startSshd } from './sshd.js';
import type { LabGateway, LabInit, LabState, LinkKind } from './state.js';
import { startTcpServer } from './server.js';
import { bootContainer } from './systemd/boot.js';
import { hostHierarchies } from './systemd/cgroups.js';
import { ensureTree } from './systemd/tree.js';

export interface LabOptions {
  /**
   * Number of gateways, 1..1000 (default 1). Up to 125 use the documentation ranges (labs on the
   * machine share 128 management /31s in 192.0.2.0/24); larger labs use 198.18.0.0/15 (addressing.ts).
   */
  gateways?: number;
  /** Links (ISPs) per gateway, >= 2 (default: weights.length, or 2). */
  links?: number;
  /** One positive integer per link (default 3,1 for two links; K..1 otherwise). */
  weights?: readonly number[];
  /** Unique per run: namespaces are `<prefix>-...`, root interfaces `<prefix>m<i>`. Default: random. */
  prefix?: string;
  /** Lab directory (created; must not exist or be empty). Default: a new temp dir. */
  dir?: string;
  /** Default: inventory.yml in the lab directory. */
  inventoryPath?: string;
  /** Default: every gateway for labs of up to 10 gateways, the first one only above. */
  lanClients?: LanClientChoice;
  /** The gateway masquerades on wan1 before lbprov, like a single-ISP router (default true). */
  baselineNat?: boolean;
  /** Written as the inventory's defaults.firewall; absent, the inventory leaves it to auto. */
  firewall?: FirewallSetting;
  /** Allocator directory shared by all labs on the machine (default /run/lbprov-lab). */
  lockRoot?: string;
  /** One per link (default: all static); see dhcp.ts and p2p.ts. */
  linkKinds?: readonly LinkKind[];
  /** p2p links start with no session: ppp<k> does not exist until connectP2p. */
  p2pDown?: boolean;
  /** How long createLab waits for each dhcp link's first lease (default 30000). */
  leaseTimeoutMs?: number;
  /**
   * Source addresses of each LAN client, 1..60 (default 1): LAN_CLIENT_ADDRESS, then hosts of a
   * second LAN subnet on the same segment (see addressing.ts); LabGateway.lanSources lists them.
   */
  lanSources?: number;
  /**
   * What runs on each gateway (default 'none'): only its sshd, in a private mount namespace; or
   * 'systemd': a container booting Debian 12 with systemd as PID 1 and sshd as ssh.service (see
   * systemd/), which `rebootGateway` can reboot. systemd gateways take static links only.
   */
  init?: LabInit;
}

export const LINK_KINDS: readonly LinkKind[] = ['static', 'dhcp', 'p2p'];
export const LAB_INITS: readonly LabInit[] = ['none', 'systemd'];

const KEYGEN_CONCURRENCY = 2;
const SSHD_START_CONCURRENCY = 8;
const LINK_START_CONCURRENCY = 8;
/** Directories a gateway's private mounts hide, so the lab dir (which sshd reads) cannot live there. */
const HIDDEN_IN_GATEWAYS = ['/etc', '/var/lib', '/var/log', '/run'];

function checkLabDir(dir: string): void {
  // The path goes into sshd_config, overlay mount options and a unix socket address.
  if (/[\s"'%,:\\]/.test(dir)) throw new LabError(`lab directory ${dir} must not contain whitespace, quotes, % , : or \\`);
  const hidden = HIDDEN_IN_GATEWAYS.find((top) => dir === top || dir.startsWith(`${top}/`));
  if (hidden !== undefined) throw new LabError(`lab directory ${dir} must not be under ${hidden}: gateways mount their own ${hidden}`);
  if (join(dir, 'server.sock').length > 100) throw new LabError(`lab directory ${dir} is too long for a unix socket path`);
}

function makeLabDir(requested: string | undefined): string {
  if (requested === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'lbprov-lab-'));
    checkLabDir(dir);
    return dir;
  }
  const dir = resolve(requested);
  checkLabDir(dir);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new LabError(`lab directory ${dir} is not empty${existsSync(join(dir, 'state.json')) ? ' (a lab is up there: take it down first)' : ''}`);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

function acquirePrefix(locks: LabLocks, requested: string | undefined, stateFile: string): { prefix: string; lock: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const prefix = requested ?? `lb${randomBytes(4).readUInt32BE().toString(36).padStart(7, '0').slice(0, 5)}`;
    if (!PREFIX_PATTERN.test(prefix)) throw new LabError(`lab prefix must match ${PREFIX_PATTERN}, got "${prefix}"`);
    const lock = locks.acquirePrefix({ prefix, stateFile, createdAt: Date.now() });
    if (lock !== undefined) return { prefix, lock };
    if (requested !== undefined) throw new LabError(`lab prefix ${prefix} is in use by another lab`);
  }
  throw new LabError('no free lab prefix after 20 attempts');
}

async function sshKeygen(file: string, comment: string): Promise<void> {
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/** "type base64" of an OpenSSH public key file, without its comment. */
function publicKey(file: string): string {
  return readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

/** A known_hosts line as OpenSSH writes it: `[host]:port` unless the port is 22. */
export function knownHostsLine(host: string, port: number, key: string): string {
  return `${port === 22 ? host : `[${host}]:${port}`} ${key}`;
}

export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const weights = options.weights ?? defaultWeights(options.links ?? options.linkKinds?.length ?? 2);
  if (options.links !== undefined && options.links !== weights.length) {
    throw new LabError(`links is ${options.links} but ${weights.length} weights were given`);
  }
  if (options.linkKinds !== undefined && options.linkKinds.length !== weights.length) {
    throw new LabError(`${options.linkKinds.length} link kinds given for ${weights.length} links`);
  }
  const unknownKind = options.linkKinds?.find((kind) => !LINK_KINDS.includes(kind));
  if (unknownKind !== undefined) throw new LabError(`link kinds are ${LINK_KINDS.join(', ')}; got ${String(unknownKind)}`);
  const init = options.init ?? 'none';
  if (!LAB_INITS.includes(init)) throw new LabError(`init is one of ${LAB_INITS.join(', ')}; got ${String(init)}`);
  // dhclient and the p2p relays run in the mount namespace of a gateway's lab sshd, which a container has not.
  const dynamicKind = options.linkKinds?.find((kind) => kind !== 'static');
  if (init === 'systemd' && dynamicKind !== undefined) {
    throw new LabError(`systemd gateways support static links only; ${dynamicKind} links need init none`);
  }
  // Before anything is made: the first build of the tree takes about a minute, and may fail.
  const containers = init === 'systemd' ? { containerTree: await ensureTree(), cgroupHierarchies: hostHierarchies() } : {};
  const gatewayCount = options.gateways ?? 1;
  const dir = makeLabDir(options.dir);
  const stateFile = join(dir, 'state.json');
  const locks = new LabLocks(options.lockRoot);
  const held: string[] = [];
  let lab: Lab;
  try {
    const { prefix, lock } = acquirePrefix(locks, options.prefix, stateFile);
    held.push(lock);
    const slots = locks.acquireSlots(gatewayCount, { prefix, stateFile, createdAt: Date.now() });
    held.push(...slots.map((slot) => slot.path));
    const state = describeLab({
      prefix,
      dir,
      inventoryPath: resolve(options.inventoryPath ?? join(dir, 'inventory.yml')),
      slots: slots.map((slot) => slot.slot),
      weights,
      lanClients: options.lanClients ?? (gatewayCount <= 10 ? 'all' : [0]),
      baselineNat: options.baselineNat ?? true,
      ...(options.firewall ? { firewall: options.firewall } : {}),
      ...(options.linkKinds ? { linkKinds: options.linkKinds } : {}),
      ...(options.lanSources !== undefined ? { lanSources: options.lanSources } : {}),
      init,
      ...containers,
    });
    state.locks = held;
    const claim = claimNeighbourTable(locks.root, prefix, gatewayCount);
    if (claim !== undefined) state.neighbourClaim = claim;
    lab = new Lab(state);
    lab.save();
  } catch (error) {
    releaseLocks(held, stateFile);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  try {
    await populateLab(lab, options);
    return lab;
  } catch (error) {
    await lab.destroy().catch(() => undefined);
    throw error;
  }
}

async function populateLab(lab: Lab, options: LabOptions): Promise<void> {
  const { state } = lab;
  mkdirSync(join(state.dir, 'agents'));
  for (const [key, file] of Object.entries(AGENT_FILES)) {
    writeFileSync(join(state.dir, 'agents', file), AGENT_SOURCES[key as keyof typeof AGENT_FILES]);
  }
  for (const gateway of state.gateways) {
    mkdirSync(gateway.dir);
    if (gateway.container === undefined) prepareGatewayFilesystem(gateway);
  }

  const keygen = pLimit(KEYGEN_CONCURRENCY);
  await Promise.all([
    buildNetwork(state),
    keygen(() => sshKeygen(state.ssh.identityFile, `lbprov-lab-${state.prefix}`)),
    ...state.gateways.map((gateway) => keygen(() => sshKeygen(gateway.hostKeyFile, `lbprov-lab-${state.prefix}-${gateway.name}`))),
  ]);

  const authorizedKeys = join(state.dir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${publicKey(state.ssh.identityFile)}\n`);
  writeFileSync(
    state.ssh.knownHosts,
    state.gateways.map((gateway) => `${knownHostsLine(gateway.mgmtAddress, state.ssh.port, publicKey(gateway.hostKeyFile))}\n`).join(''),
  );

  const starter = pLimit(SSHD_START_CONCURRENCY);
  // Record each process as soon as it runs, so a failure further on still stops it.
  const record = (started: LabState['processes'][number]): void => {
    state.processes.push(started);
  };
  const startGateway = async (gateway: LabGateway): Promise<void> => {
    if (gateway.container !== undefined) {
      await bootContainer(state, gateway, gateway.container, authorizedKeys, record);
      return;
    }
    const files = { hostKey: gateway.hostKeyFile, pidFile: gateway.sshdPidFile, authorizedKeys };
    writeFileSync(gateway.sshdConfig, renderSshdConfig(gateway, files, state.ssh.port));
    record(await startSshd(gateway));
  };
  try {
    await allSettled([startTcpServer(state).then(record), ...state.gateways.map((gateway) => starter(() => startGateway(gateway)))]);
  } finally {
    lab.save();
  }
  await startDynamicLinks(state, options);

  mkdirSync(dirname(state.inventoryPath), { recursive: true });
  writeFileSync(state.inventoryPath, renderLabInventory(state));
}

/** Every dhcp link's first lease and (unless p2pDown) every p2p link's first session; they need the gateways' sshd (their mount namespace). */
async function startDynamicLinks(state: LabState, options: LabOptions): Promise<void> {
  const limit = pLimit(LINK_START_CONCURRENCY);
  await allSettled(
    state.gateways.flatMap((gateway) =>
      gateway.links.map((link) =>
        limit(async () => {
          if (link.kind === 'dhcp') await startDhcpLink(state, gateway, link, options.leaseTimeoutMs);
          if (link.kind === 'p2p' && options.p2pDown !== true) await connect(state, gateway, link, 0);
        }),
      ),
    ),
  );
}

/**
 * Like Promise.all, but rejects (with the first error) only once every task has finished: a lab
 * being destroyed after a failure must not have tasks still starting processes behind it.
 */
async function allSettled(tasks: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(tasks)).find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}
