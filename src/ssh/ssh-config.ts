/**
 * ~/.ssh/config support by asking OpenSSH itself: `ssh -G HOST` prints the configuration ssh
 * would use for HOST after Host/Match matching, Include, token and ~ expansion. That is exact
 * where a hand-written parser would drift (Match, Include globs, %-tokens, first-match-wins per
 * keyword), and it costs one short-lived process per gateway, not a connection.
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { RemoteError } from '../errors.js';
import type { SshSettings } from '../model/inventory.js';
import { expandHome } from './auth.js';
import { parseProxyJump } from './proxy-jump.js';

export interface ResolveSshOptions {
  /** Instead of ~/.ssh/config (ssh -F). */
  configFile?: string;
  /** The OpenSSH client binary; default `ssh` from PATH. */
  sshCommand?: string;
}

/** The keys of SshSettings the inventory set explicitly; only those override ~/.ssh/config. */
export type ExplicitSshKeys = ReadonlySet<keyof SshSettings>;

type OpenSshConfig = Map<string, string[]>;

/** Runs `ssh -G`; undefined when no OpenSSH client is installed (then there is no ssh config to honour). */
async function openSshConfigFor(host: string, gatewayName: string, options: ResolveSshOptions, port?: number, user?: string): Promise<OpenSshConfig | undefined> {
  const args = [
    '-G',
    ...(options.configFile ? ['-F', options.configFile] : []),
    ...(port !== undefined ? ['-p', String(port)] : []),
    ...(user !== undefined ? ['-l', user] : []),
    '--',
    host,
  ];
  const output = await new Promise<string | undefined>((resolve, reject) => {
    execFile(options.sshCommand ?? 'ssh', args, { timeout: 10_000, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') resolve(undefined);
      else if (error) reject(new RemoteError(`ssh -G ${host} failed: ${stderr.trim() || error.message}`, { host: gatewayName }, 'prerequisite'));
      else resolve(stdout);
    });
  });
  if (output === undefined) return undefined;
  const config: OpenSshConfig = new Map();
  for (const line of output.split('\n')) {
    const match = /^(\S+) (.*)$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    const key = match[1].toLowerCase();
    config.set(key, [...(config.get(key) ?? []), match[2]]);
  }
  return config;
}

const first = (config: OpenSshConfig, key: string): string | undefined => config.get(key)?.[0];

/** Seconds as printed by ssh -G; "none"/0 mean unset. */
function secondsToMs(value: string | undefined): number | undefined {
  const seconds = value === undefined ? NaN : Number(value);
  return Number.isInteger(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const path of paths) {
    try {
      await access(expandHome(path));
      return path;
    } catch {
      // OpenSSH skips missing identities too.
    }
  }
  return undefined;
}

/**
 * Inventory SSH settings merged with what ~/.ssh/config says for `inventorySsh.host`:
 * explicit inventory keys win, the rest come from the ssh config (HostName, User, Port,
 * IdentityFile, ProxyJump, ServerAliveInterval, ConnectTimeout, UserKnownHostsFile).
 * ProxyJump hops are resolved too and returned as canonical `user@hostname:port` so that each
 * hop's host key is checked under the name OpenSSH would use.
 */
export async function resolveSshSettings(
  gatewayName: string,
  inventorySsh: SshSettings,
  explicitKeys: ExplicitSshKeys,
  options: ResolveSshOptions = {},
): Promise<SshSettings> {
  const explicit = (key: keyof SshSettings): boolean => explicitKeys.has(key);
  const config = await openSshConfigFor(
    inventorySsh.host,
    gatewayName,
    options,
    explicit('port') ? inventorySsh.port : undefined,
    explicit('user') ? inventorySsh.user : undefined,
  );
  if (!config) return inventorySsh;
  const proxyCommand = first(config, 'proxycommand');
  if (proxyCommand !== undefined && proxyCommand !== 'none') {
    throw new RemoteError('the ssh config sets ProxyCommand, which lbprov does not support: use ProxyJump', { host: gatewayName }, 'prerequisite');
  }
  const resolved: SshSettings = { ...inventorySsh, host: first(config, 'hostname') ?? inventorySsh.host };
  const port = Number(first(config, 'port'));
  if (!explicit('port') && Number.isInteger(port) && port > 0) resolved.port = port;
  const user = first(config, 'user');
  if (!explicit('user') && user !== undefined) resolved.user = user;
  if (!explicit('identityFile')) {
    const identityFile = await firstExisting(config.get('identityfile') ?? []);
    if (identityFile !== undefined) resolved.identityFile = identityFile;
  }
  const knownHosts = first(config, 'userknownhostsfile')?.split(' ')[0];
  if (!explicit('knownHosts') && knownHosts !== undefined) resolved.knownHosts = knownHosts;
  const keepaliveIntervalMs = secondsToMs(first(config, 'serveraliveinterval'));
  if (!explicit('keepaliveIntervalMs') && keepaliveIntervalMs !== undefined) resolved.keepaliveIntervalMs = keepaliveIntervalMs;
  const connectTimeoutMs = secondsToMs(first(config, 'connecttimeout'));
  if (!explicit('connectTimeoutMs') && connectTimeoutMs !== undefined) resolved.connectTimeoutMs = connectTimeoutMs;
  const attempts = Number(first(config, 'connectionattempts'));
  if (!explicit('connectionAttempts') && Number.isInteger(attempts) && attempts >= 1) resolved.connectionAttempts = Math.min(attempts, 10);
  const configJump = first(config, 'proxyjump');
  const proxyJump = explicit('proxyJump') ? inventorySsh.proxyJump : configJump !== 'none' ? configJump : undefined;
  if (proxyJump === undefined || proxyJump === 'none') delete resolved.proxyJump;
  else resolved.proxyJump = await canonicalProxyJump(proxyJump, gatewayName, options);
  return resolved;
}

async function canonicalProxyJump(spec: string, gatewayName: string, options: ResolveSshOptions): Promise<string> {
  const hops = await Promise.all(
    parseProxyJump(spec, gatewayName).map(async (hop) => {
      const config = await openSshConfigFor(hop.host, gatewayName, options, hop.port, hop.user);
      const user = config ? first(config, 'user') : hop.user;
      const port = (config ? first(config, 'port') : undefined) ?? hop.port ?? 22;
      return `${user ? `${user}@` : ''}${(config && first(config, 'hostname')) ?? hop.host}:${port}`;
    }),
  );
  return hops.join(',');
}
