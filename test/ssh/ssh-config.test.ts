import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SshSettings } from '../../src/model/inventory.js';
import { openSession } from '../../src/ssh/session.js';
import { resolveSshSettings, type ExplicitSshKeys } from '../../src/ssh/ssh-config.js';
import { makeHostKey, makeUserKey, sshSettings, startServer, tempDir } from './harness.js';

const dir = tempDir();
afterAll(() => dir.remove());
const key = makeUserKey(dir.path, 'id_gw');
const configFile = join(dir.path, 'config');
const included = join(dir.path, 'included.conf');
writeFileSync(included, ['Host bastion', '  HostName 198.51.100.7', '  User jump', '  Port 2022', ''].join('\n'));
writeFileSync(
  configFile,
  [
    `Include ${included}`,
    'Host gw-*',
    '  User admin',
    '  ServerAliveInterval 7',
    'Host gw-east',
    '  HostName 192.0.2.10',
    '  Port 2200',
    '  User ignored-because-first-match-wins',
    `  IdentityFile ${key.file}`,
    '  ProxyJump bastion,ops@198.51.100.9:2222',
    `  UserKnownHostsFile ${dir.path}/kh ${dir.path}/kh2`,
    '  ConnectTimeout 4',
    'Host legacy',
    '  ProxyCommand nc %h %p',
    '',
  ].join('\n'),
);

const inventory = (overrides: Partial<SshSettings> = {}): SshSettings =>
  sshSettings({ host: 'gw-east', port: 22, user: 'root', knownHosts: '~/.ssh/known_hosts', connectTimeoutMs: 10_000, keepaliveIntervalMs: 15_000, ...overrides });
const none: ExplicitSshKeys = new Set();

describe('resolveSshSettings (ssh -G)', () => {
  it('takes HostName, User, Port, IdentityFile, ProxyJump, ServerAliveInterval, ConnectTimeout, UserKnownHostsFile from the ssh config', async () => {
    const resolved = await resolveSshSettings('gw1', inventory(), none, { configFile });
    expect(resolved).toEqual({
      ...inventory(),
      host: '192.0.2.10',
      port: 2200,
      user: 'admin',
      identityFile: key.file,
      proxyJump: 'jump@198.51.100.7:2022,ops@198.51.100.9:2222',
      keepaliveIntervalMs: 7000,
      connectTimeoutMs: 4000,
      knownHosts: `${dir.path}/kh`,
    });
  });

  it('lets explicit inventory keys win', async () => {
    const explicit: ExplicitSshKeys = new Set(['port', 'user', 'identityFile', 'proxyJump', 'keepaliveIntervalMs', 'knownHosts', 'connectTimeoutMs']);
    const mine = inventory({ port: 2201, user: 'ops', identityFile: '/keys/mine', proxyJump: 'bastion', knownHosts: '/kh/mine' });
    const resolved = await resolveSshSettings('gw1', mine, explicit, { configFile });
    // The alias still resolves (HostName), and the inventory's own jump host alias is canonicalised.
    expect(resolved).toEqual({ ...mine, host: '192.0.2.10', proxyJump: 'jump@198.51.100.7:2022' });
  });

  it('leaves hosts the config does not mention alone', async () => {
    const plain = inventory({ host: '203.0.113.5', user: 'root' });
    const resolved = await resolveSshSettings('gw1', plain, new Set(['user']), { configFile });
    expect(resolved).toMatchObject({ host: '203.0.113.5', port: 22, user: 'root', keepaliveIntervalMs: 15_000 });
    expect(resolved.proxyJump).toBeUndefined();
  });

  it('refuses ProxyCommand instead of silently ignoring it', async () => {
    await expect(resolveSshSettings('gw1', inventory({ host: 'legacy' }), none, { configFile })).rejects.toThrow(/ProxyCommand.*use ProxyJump/);
  });

  it('returns the inventory unchanged without an OpenSSH client', async () => {
    const settings = inventory();
    expect(await resolveSshSettings('gw1', settings, none, { configFile, sshCommand: join(dir.path, 'no-ssh-here') })).toBe(settings);
  });

  it('connects to a Host alias resolved from the config', async () => {
    const hostKey = makeHostKey();
    const server = await startServer({ hostKeys: [hostKey], authorizedKeys: [key.publicKey] });
    try {
      const aliasConfig = join(dir.path, 'alias-config');
      const knownHosts = join(dir.path, 'kh-alias');
      writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${hostKey.publicLine}\n`);
      writeFileSync(aliasConfig, `Host lab-gw\n  HostName 127.0.0.1\n  Port ${server.port}\n  User cfguser\n  IdentityFile ${key.file}\n  UserKnownHostsFile ${knownHosts}\n`);
      const resolved = await resolveSshSettings('lab-gw', inventory({ host: 'lab-gw' }), none, { configFile: aliasConfig });
      const session = await openSession('lab-gw', resolved, { env: {} });
      expect((await session.run('echo hi')).stdout).toBe('hi\n');
      await session.close();
      expect(server.authAttempts.at(-1)?.user).toBe('cfguser');
    } finally {
      await server.close();
    }
  });
});
