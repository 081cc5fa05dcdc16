/**
 * Against the real OpenSSH sshd (own config, keys and port under a temp dir): algorithm
 * negotiation, known_hosts from ssh-keyscan, exec semantics and timeouts as OpenSSH does them.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteError } from '../../src/errors.js';
import { openSession } from '../../src/ssh/session.js';
import { makeUserKey, sshSettings, tempDir } from './harness.js';

const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/sshd');
// In CI a missing prerequisite is a failure, not a silent skip.
const suite = canRun || process.env['CI'] === 'true' ? describe : describe.skip;

suite('real OpenSSH sshd', () => {
  const dir = tempDir();
  let sshd: ChildProcess;
  const logFile = join(dir.path, 'sshd.log');
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  let port = 0;
  const knownHosts = join(dir.path, 'known_hosts');
  const userKey = makeUserKey(dir.path, 'id_client');

  beforeAll(async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir.path, 'host_ed25519')]);
    execFileSync('cp', [`${userKey.file}.pub`, join(dir.path, 'authorized_keys')]);
    // sshd's privilege separation needs this standard directory.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const config = join(dir.path, 'sshd_config');
    writeFileSync(
      config,
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${join(dir.path, 'host_ed25519')}`,
        `PidFile ${join(dir.path, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir.path, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'LogLevel DEBUG1',
        '',
      ].join('\n'),
    );
    // -E: with -e, debug lines of the session child would land in the commands' stderr.
    sshd = spawn('/usr/sbin/sshd', ['-D', '-E', logFile, '-f', config], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !log().includes('Server listening'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(log()).toContain('Server listening');
    writeFileSync(knownHosts, execFileSync('ssh-keyscan', ['-p', String(port), '-t', 'ed25519', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }));
  });

  afterAll(() => {
    sshd?.kill();
    dir.remove();
  });

  const settings = () => sshSettings({ port, user: 'root', knownHosts, identityFile: userKey.file, keepaliveIntervalMs: 1000 });

  it('negotiates curve25519, aes128-gcm and ed25519, and runs commands on one connection', async () => {
    const session = await openSession('real', settings(), { env: {} });
    try {
      expect(await session.run('cat; echo err >&2; exit 5', { stdin: 'payload\n' })).toEqual({ stdout: 'payload\n', stderr: 'err\n', code: 5 });
      expect((await session.run('echo $((6*7))')).stdout).toBe('42\n');
    } finally {
      await session.close();
    }
    const text = log();
    expect(text).toMatch(/kex: algorithm: curve25519-sha256/);
    expect(text).toMatch(/kex: host key algorithm: ssh-ed25519/);
    expect(text).toMatch(/kex: client->server cipher: aes128-gcm@openssh.com/);
    expect(text.match(/Accepted publickey for root/g)).toHaveLength(1);
  });

  it('times a command out promptly, asks sshd to kill it, and keeps the connection', async () => {
    const session = await openSession('real', settings(), { env: {} });
    try {
      const started = Date.now();
      const error = await session.run('sleep 3', { timeoutMs: 300 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as RemoteError).reason).toBe('timeout');
      expect((await session.run('echo still-here')).stdout).toBe('still-here\n');
      // The KILL request reached sshd (which refuses to deliver it for root logins).
      expect(log()).toMatch(/req signal/);
    } finally {
      await session.close();
    }
  });
});
