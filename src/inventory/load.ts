/** Inventory file -> validated Inventory, or InventoryErrors listing every problem. No network. */

import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { isUtf8 } from 'node:buffer';
import { InputError } from '../errors.js';
import type { FailoverMode, FirewallSetting, GatewaySpec, Inventory, HookSpec, LinkSpec, NextHopSpec, SshSettings } from '../model/inventory.js';
import {
  GATEWAY_DEFAULTS,
  HOOK_TIMEOUT_DEFAULT,
  inventorySchema,
  MAX_POOL_SLOTS,
  METRICS_DIR_DEFAULT,
  SSH_DEFAULTS,
  type RawGateway,
  type RawInventory,
  type RawSsh,
} from './schema.js';
import { hex, linkTable, ownTrafficTable } from '../model/ownership.js';
import { InventoryErrors } from './errors.js';
import { buildRules } from './rules.js';
import { monitorSettings } from './monitor.js';
import { isGatewayName, preview } from './validators.js';
import {
  checkSourceSize,
  decodeSource,
  formatKey,
  parseYamlSource,
  sortedErrors,
  validateYaml,
  type ParsedYaml,
  type YamlPath,
} from './yaml-source.js';

/** `-i site-a` -> <cwd>/inventories/site-a.yml; anything with '/' or a .yml/.yaml suffix is a path. */
export function resolveInventoryPath(nameOrPath: string, cwd: string): string {
  if (nameOrPath.includes('/') || /\.ya?ml$/.test(nameOrPath)) return resolve(cwd, nameOrPath);
  if (!isGatewayName(nameOrPath)) {
    throw new InputError('-i', nameOrPath === '' ? '(empty)' : preview(nameOrPath), 'an inventory name is 1-63 of [A-Za-z0-9_.-]; give a path to read another file');
  }
  return join(cwd, 'inventories', `${nameOrPath}.yml`);
}

export function loadInventory(nameOrPath: string, cwd: string = process.cwd()): Inventory {
  const file = resolveInventoryPath(nameOrPath, cwd);
  const refuse = (problem: string): never => {
    throw new InventoryErrors([new InputError(file, '(document)', problem)]);
  };
  let source: Buffer;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) return refuse('is not a regular file');
    // Checked before reading, so a huge file is refused without loading it.
    checkSourceSize(stat.size, file);
    source = readFileSync(file);
  } catch (error) {
    if (error instanceof InventoryErrors) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    return refuse(code === 'ENOENT' ? 'no such inventory file (-i NAME reads inventories/NAME.yml)' : `cannot read: ${code ?? String(error)}`);
  }
  return parseInventoryText(source, file);
}

export function parseInventoryText(text: string | Buffer, file: string): Inventory {
  const parsed = parseYamlSource(decodeSource(text, file), file);
  const raw = validateYaml(parsed, inventorySchema);
  return buildInventory(raw, parsed, resolve(file));
}

interface Problem {
  path: YamlPath;
  problem: string;
}

/** An effective setting and the key it came from (undefined: the built-in default). */
interface Sourced<T> {
  value: T;
  path?: YamlPath;
}

function pick<T>(candidates: readonly [T | undefined, YamlPath][], fallback: T): Sourced<T> {
  for (const [value, path] of candidates) if (value !== undefined) return { value, path };
  return { value: fallback };
}

function expandHome(path: string): string {
  return path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

function buildInventory(raw: RawInventory, parsed: ParsedYaml, path: string): Inventory {
  const problems: Problem[] = [];
  const gateways = Object.entries(raw.gateways).map(([name, gateway]) =>
    buildGateway(name, gateway, raw, parsed, dirname(path), problems),
  );

  if ('all' in raw.gateways) problems.push({ path: ['gateways', 'all'], problem: '"all" is reserved: --limit all means every gateway' });
  const targets = new Map<string, string>();
  for (const gateway of gateways) {
    const target = `${gateway.ssh.user}@${gateway.ssh.host}:${gateway.ssh.port}`;
    const other = targets.get(target);
    if (other !== undefined) {
      problems.push({ path: ['gateways', gateway.name, 'host'], problem: `same SSH target ${target} as gateway "${other}"` });
    } else targets.set(target, gateway.name);
  }

  const groups: Record<string, string[]> = {};
  for (const [group, members] of Object.entries(raw.groups ?? {})) {
    if (group === 'all') problems.push({ path: ['groups', group], problem: '"all" is reserved: --limit all means every gateway' });
    if (group in raw.gateways) problems.push({ path: ['groups', group], problem: `a gateway is already called "${group}"` });
    members.forEach((member, i) => {
      if (!(member in raw.gateways)) problems.push({ path: ['groups', group, i], problem: `no gateway called ${preview(member)}` });
      else if (members.indexOf(member) !== i) problems.push({ path: ['groups', group, i], problem: `"${member}" is listed twice` });
    });
    groups[group] = [...members];
  }

  if (problems.length > 0) {
    throw sortedErrors(problems.map((p) => new InputError(parsed.locate(p.path), formatKey(p.path), p.problem)));
  }
  return { path, gateways, groups };
}

function buildGateway(name: string, raw: RawGateway, inventory: RawInventory, parsed: ParsedYaml, inventoryDir: string, problems: Problem[]): GatewaySpec {
  const at = (...rest: (string | number)[]): YamlPath => ['gateways', name, ...rest];
  const source = parsed.locate(at());
  const defaults = inventory.defaults ?? {};
  const tuning = <T>(key: string, own: T | undefined, shared: T | undefined, fallback: T) =>
    pick<T>([[own, at(key)], [shared, ['defaults', key]]], fallback);

  const markMask = tuning<number>('mark_mask', raw.mark_mask, defaults.mark_mask, GATEWAY_DEFAULTS.markMask);
  const tableBase = tuning<number>('table_base', raw.table_base, defaults.table_base, GATEWAY_DEFAULTS.tableBase);
  const priorityBase = tuning<number>('priority_base', raw.priority_base, defaults.priority_base, GATEWAY_DEFAULTS.priorityBase);
  const failover = tuning<FailoverMode>('failover', raw.failover, defaults.failover, GATEWAY_DEFAULTS.failover);
  const firewall = tuning<FirewallSetting>('firewall', raw.firewall, defaults.firewall, GATEWAY_DEFAULTS.firewall);
  const problemAt = (setting: Sourced<unknown>, fallbackPath: YamlPath, problem: string) =>
    problems.push({ path: setting.path ?? fallbackPath, problem });

  const linkCount = raw.links.length;
  const markValues = lowestRunLength(markMask.value);
  if (2 ** markValues - 1 < linkCount) {
    problemAt(markMask, at('links'), `mask ${hex(markMask.value)} has ${2 ** markValues - 1} non-zero values, fewer than the ${linkCount} links`);
  }
  const tables = [...Array.from({ length: linkCount }, (_, i) => linkTable({ tableBase: tableBase.value }, i)), ownTrafficTable({ tableBase: tableBase.value })];
  if (tables.some((t) => t > 2 ** 31 - 1 || (t >= 253 && t <= 255))) {
    problemAt(tableBase, at('links'), `routing tables ${tables.join(', ')} (one per link, and one for the gateway's own traffic) must avoid 253-255 (default, main, local) and stay below 2^31`);
  }

  const interfaces = new Map<string, string>();
  const claimInterface = (ifname: string, path: YamlPath) => {
    const owner = interfaces.get(ifname);
    if (owner !== undefined) problems.push({ path, problem: `interface "${ifname}" is already used by ${owner}` });
    else interfaces.set(ifname, formatKey(path.slice(2)));
  };
  raw.lan.interfaces.forEach((ifname, i) => claimInterface(ifname, at('lan', 'interfaces', i)));

  const linkNames = new Map<string, number>();
  const links: LinkSpec[] = raw.links.map((link, i) => {
    const first = linkNames.get(link.name);
    if (first !== undefined) problems.push({ path: at('links', i, 'name'), problem: `link name "${link.name}" is already used by links[${first}]` });
    else linkNames.set(link.name, i);
    claimInterface(link.interface, at('links', i, 'interface'));

    const nextHop = nextHopSpec(link.gateway);
    if (nextHop.kind === 'none' && link.probes === undefined) {
      problems.push({ path: at('links', i, 'gateway'), problem: 'a point-to-point link (gateway: none) has no next hop to probe: list its probes' });
    }
    const probes = link.probes ?? (nextHop.kind === 'static' ? [nextHop.address] : []);
    probes.forEach((probe, p) => {
      if (probes.indexOf(probe) !== p) problems.push({ path: at('links', i, 'probes', p), problem: `probe ${probe} is listed twice` });
    });
    // A DHCP link without probes probes the one router it learns.
    const monitor = monitorSettings(link.monitor, inventory.defaults?.monitor, at('links', i, 'monitor'), Math.max(probes.length, 1), problems);
    return { name: link.name, interface: link.interface, nextHop, weight: link.weight, tier: link.tier ?? 1, probes, monitor };
  });

  const weights = links.map((l) => l.weight);
  const divisor = weights.reduce(gcd);
  const slots = weights.reduce((sum, w) => sum + w / divisor, 0);
  if (slots > MAX_POOL_SLOTS) {
    problems.push({
      path: at('links'),
      problem: `weights ${weights.join(':')} reduce to ${slots} balancing slots (more than ${MAX_POOL_SLOTS}); use smaller or more even weights`,
    });
  }

  const sticky = tuning<RawGateway['sticky']>('sticky', raw.sticky, defaults.sticky, undefined).value;
  const hooksSet = pick<string[]>([[raw.hooks, at('hooks')], [defaults.hooks, ['defaults', 'hooks']], [inventory.hooks, ['hooks']]], []);
  const hooks = hookPaths(hooksSet.value, hooksSet.path ?? ['hooks'], inventoryDir, problems);
  const hookTimeout = pick<number>([[raw.hook_timeout, at('hook_timeout')], [defaults.hook_timeout, ['defaults', 'hook_timeout']], [inventory.hook_timeout, ['hook_timeout']]], HOOK_TIMEOUT_DEFAULT);
  const metricsDir = tuning<string | null>('metrics_dir', raw.metrics_dir, defaults.metrics_dir, METRICS_DIR_DEFAULT).value;
  const rules = buildRules(raw.rules ?? [], { gateway: name, linkNames: links.map((l) => l.name), lanInterfaces: raw.lan.interfaces, locate: (p) => parsed.locate(p) }, problems);
  if (failover.value === 'condition' && (rules.rules.length > 0 || sticky)) {
    problemAt(failover, at('failover'), 'the condition mechanism balances one pool: use auto or chain-swap with rules or sticky');
  }

  return {
    name,
    ssh: sshSettings(raw.host, inventory.ssh, raw.ssh),
    sshExplicit: explicitSshKeys(inventory.ssh, raw.ssh),
    lanInterfaces: [...raw.lan.interfaces],
    links,
    markMask: markMask.value,
    tableBase: tableBase.value,
    priorityBase: priorityBase.value,
    failover: failover.value,
    firewall: firewall.value,
    sticky: sticky ? { timeoutS: sticky.timeout } : null,
    hooks,
    hookTimeoutS: hookTimeout.value,
    metricsDir,
    rules: rules.rules,
    warnings: rules.warnings,
    source,
  };
}

function nextHopSpec(word: string): NextHopSpec {
  return word === 'dhcp' || word === 'none' ? { kind: word } : { kind: 'static', address: word };
}

/** Hooks read from this machine: each an executable text file (it is copied to the gateway), names unique. */
function hookPaths(paths: readonly string[], path: YamlPath, inventoryDir: string, problems: Problem[]): HookSpec[] {
  const names = new Set<string>();
  return paths.map((given, i): HookSpec => {
    const absolute = isAbsolute(given) ? given : resolve(inventoryDir, given);
    const at = [...path, i];
    let problem: string | null = null;
    let content = '';
    try {
      const st = statSync(absolute);
      const bytes = st.isFile() && st.size <= 1024 * 1024 ? readFileSync(absolute) : null;
      if (!st.isFile()) problem = `${given} is not a file`;
      else if ((st.mode & 0o100) === 0) problem = `${given} is not executable (chmod +x)`;
      else if (!bytes) problem = `${given} is larger than 1 MiB`;
      else if (!isUtf8(bytes)) problem = `${given} is not a text file (hooks are copied as scripts)`;
      else content = bytes.toString('utf8');
    } catch {
      problem = `${given} does not exist (resolved to ${absolute})`;
    }
    const name = basename(absolute);
    if (!problem && names.has(name)) problem = `another hook is also called ${name} (they are installed side by side in /etc/lbprov/hooks)`;
    if (!problem && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(name)) problem = `${name}: a hook's file name must be 1-64 of [A-Za-z0-9_.-]`;
    names.add(name);
    if (problem) problems.push({ path: at, problem });
    return { name, localPath: absolute, content };
  });
}

/** Built-in defaults < top-level `ssh` < the gateway's `ssh`; null clears an optional key. */
function sshSettings(host: string, inventoryWide: RawSsh | undefined, own: RawSsh | undefined): SshSettings {
  const merged: RawSsh = { ...inventoryWide };
  for (const [key, value] of Object.entries(own ?? {})) if (value !== undefined) Object.assign(merged, { [key]: value });
  const seconds = (value: number | undefined, fallback: number) => Math.round((value ?? fallback) * 1000);
  const settings: SshSettings = {
    host,
    port: merged.port ?? SSH_DEFAULTS.port,
    user: merged.user ?? SSH_DEFAULTS.user,
    knownHosts: expandHome(merged.known_hosts ?? SSH_DEFAULTS.knownHosts),
    become: merged.become ?? SSH_DEFAULTS.become,
    connectTimeoutMs: seconds(merged.connect_timeout, SSH_DEFAULTS.connectTimeoutS),
    commandTimeoutMs: seconds(merged.command_timeout, SSH_DEFAULTS.commandTimeoutS),
    keepaliveIntervalMs: seconds(merged.keepalive_interval, SSH_DEFAULTS.keepaliveIntervalS),
    connectionAttempts: merged.connection_attempts ?? SSH_DEFAULTS.connectionAttempts,
  };
  if (merged.identity_file) settings.identityFile = expandHome(merged.identity_file);
  if (merged.proxy_jump) settings.proxyJump = merged.proxy_jump;
  return settings;
}

const SSH_SETTING_OF: Record<keyof RawSsh, keyof SshSettings> = {
  user: 'user',
  port: 'port',
  identity_file: 'identityFile',
  known_hosts: 'knownHosts',
  become: 'become',
  proxy_jump: 'proxyJump',
  connect_timeout: 'connectTimeoutMs',
  command_timeout: 'commandTimeoutMs',
  keepalive_interval: 'keepaliveIntervalMs',
  connection_attempts: 'connectionAttempts',
};

/** SSH settings the inventory wrote (null included: it clears on purpose); ~/.ssh/config may fill the others. */
function explicitSshKeys(inventoryWide: RawSsh | undefined, own: RawSsh | undefined): (keyof SshSettings)[] {
  const written = new Set<keyof SshSettings>(['host']);
  for (const raw of [inventoryWide, own]) {
    for (const [key, value] of Object.entries(raw ?? {})) if (value !== undefined) written.add(SSH_SETTING_OF[key as keyof RawSsh]);
  }
  return [...written].sort();
}

/** Number of contiguous set bits starting at the lowest set bit (the mask is validated contiguous). */
function lowestRunLength(mask: number): number {
  let shifted = mask;
  while (shifted % 2 === 0) shifted /= 2;
  return Math.log2(shifted + 1);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
