import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RemoteError } from '../../src/errors.js';
import { fingerprintSha256 } from '../../src/ssh/known-hosts.js';
import type { SshSettings } from '../../src/model/inventory.js';
import { openSession, type OpenSessionOptions, type RemoteSession } from '../../src/ssh/session.js';
import { traceFromEnv, type CommandTraceEntry } from '../../src/ssh/trace.js';
import { makeHostKey, makeUserKey, sshSettings, startFreezableRelay, startServer, tempDir, writeExecutable, type TestServer } from './harness.js';

const dir = tempDir();
const hostKey = makeHostKey('ed25519');
const userKey = makeUserKey(dir.path, 'id_user');
const knownHosts = join(dir.path, 'known_hosts');
let server: TestServer;
const sessions: RemoteSession[] = [];
const noAgent = { env: {} };

beforeAll(async () => {
  server = await startServer({ hostKeys: [hostKey], authorizedKeys: [userKey.publicKey], pathPrefix: join(dir.path, 'bin') });
  writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${hostKey.publicLine}\n`);
});
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await server.close();
  dir.remove();
});

async function open(overrides: Partial<SshSettings> = {}, opts: OpenSessionOptions = {}): Promise<RemoteSession> {
  const session = await openSession('gw1', sshSettings({ port: server.port, knownHosts, identityFile: userKey.file, ...overrides }), { ...noAgent, ...opts });
  sessions.push(session);
  return session;
}

async function remoteError(promise: Promise<unknown>): Promise<RemoteError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RemoteError);
  return error as RemoteError;
}

describe('commands on one connection', () => {
  it('passes stdin, separates stderr, reports exit codes, all on one connection', async () => {
    const before = server.connections;
    const session = await open();
    expect(await session.run('cat; echo oops >&2; exit 3', { stdin: 'line1\nline2 é\n' })).toEqual({ stdout: 'line1\nline2 é\n', stderr: 'oops\n', code: 3 });
    expect(await session.run('printf ok')).toEqual({ stdout: 'ok', stderr: '', code: 0 });
    const parallel = await Promise.all(Array.from({ length: 12 }, (_, i) => session.run(`echo ${i}`)));
    expect(parallel.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    expect(server.connections - before).toBe(1);
  });

  it('times a hung command out, kills it, and keeps the session usable', async () => {
    const session = await open();
    const started = Date.now();
    const error = await remoteError(session.run('echo partial >&2; sleep 10', { timeoutMs: 400 }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.reason).toBe('timeout');
    expect(error.context).toMatchObject({ host: 'gw1', command: 'echo partial >&2; sleep 10', stderr: 'partial\n' });
    expect(error.message).toMatch(/^gw1: command timed out after 400 ms/);
    expect((await session.run('echo alive')).stdout).toBe('alive\n');
  });

  it('gives up on the whole host once its lifetime is over, whatever each command does', async () => {
    const session = await open({ commandTimeoutMs: 60_000 }, { lifetimeMs: 500 });
    expect((await session.run('echo quick')).stdout).toBe('quick\n');
    const started = Date.now();
    const error = await remoteError(session.run('sleep 10'));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.message).toMatch(/whole-host timeout/);
    await remoteError(session.run('echo later'));
  });

  it('reports a signal-killed command with a null code and the signal', async () => {
    const session = await open();
    expect(await session.run('kill -TERM $$')).toMatchObject({ code: null, signal: 'SIGTERM' });
  });
});

describe('sudo (become)', () => {
  const sudo = join(dir.path, 'bin', 'sudo');
  beforeAll(() => execFileSync('mkdir', ['-p', join(dir.path, 'bin')]));

  it('wraps privileged commands as sudo -n -- sh -c and still passes stdin', async () => {
    // NOPASSWD sudo double: insists on exactly the form lbprov promises, then runs the command.
    writeExecutable(sudo, '#!/bin/sh\n[ "$1" = -n ] && [ "$2" = -- ] || { echo "bad sudo args: $*" >&2; exit 99; }\nshift 2\nexec "$@"\n');
    const session = await open({ become: true });
    const result = await session.run("read x; echo \"got $x\"; echo 'quoted' && exit 4", { privileged: true, stdin: 'secret-ish\n' });
    expect(result).toEqual({ stdout: 'got secret-ish\nquoted\n', stderr: '', code: 4 });
    expect(server.commands.at(-1)).toBe(`sudo -n -- sh -c 'read x; echo "got $x"; echo '\\''quoted'\\'' && exit 4'`);
    await session.run('true');
    expect(server.commands.at(-1)).toBe('true');
  });

  it('fails fast with an auth error when sudo wants a password', async () => {
    writeExecutable(sudo, '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n');
    const session = await open({ become: true, user: 'deploy' });
    const started = Date.now();
    const error = await remoteError(session.run('iptables-save', { privileged: true }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.reason).toBe('auth');
    expect(error.message).toMatch(/sudo requires a password for user deploy.*NOPASSWD/);
    expect(error.context.stderr).toContain('a password is required');
  });

  it('runs privileged commands directly when become is off', async () => {
    writeExecutable(sudo, '#!/bin/sh\nexit 99\n');
    const session = await open({ become: false });
    expect((await session.run('echo root', { privileged: true })).code).toBe(0);
    expect(server.commands.at(-1)).toBe('echo root');
  });
});

describe('host keys', () => {
  it('refuses an unknown host, showing the SHA256 fingerprint', async () => {
    const empty = join(dir.path, 'kh-empty');
    const error = await remoteError(open({ knownHosts: empty }));
    expect(error.reason).toBe('hostkey');
    expect(error.message).toContain(`[127.0.0.1]:${server.port} is not in ${empty}`);
    expect(error.message).toContain(fingerprintSha256(hostKey.blob));
    expect(existsSync(empty)).toBe(false);
  });

  it('with acceptNew records the key, then trusts it without acceptNew', async () => {
    const file = join(dir.path, 'kh-accept', 'known_hosts');
    await (await open({ knownHosts: file }, { acceptNew: true })).close();
    expect(readFileSync(file, 'utf8')).toBe(`[127.0.0.1]:${server.port} ${hostKey.publicLine}\n`);
    expect((await (await open({ knownHosts: file })).run('echo ok')).stdout).toBe('ok\n');
  });

  it('refuses a changed key loudly, naming file:line, even with acceptNew', async () => {
    const file = join(dir.path, 'kh-changed');
    const content = `# managed\n[127.0.0.1]:${server.port} ${makeHostKey('ed25519').publicLine}\n`;
    writeFileSync(file, content);
    const error = await remoteError(open({ knownHosts: file }, { acceptNew: true }));
    expect(error.reason).toBe('hostkey');
    expect(error.message).toContain('REMOTE HOST KEY CHANGED');
    expect(error.message).toContain(`${file}:2`);
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it('accepts a hashed entry made by ssh-keygen -H', async () => {
    const file = join(dir.path, 'kh-hashed');
    writeFileSync(file, `[127.0.0.1]:${server.port} ${hostKey.publicLine}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    expect(readFileSync(file, 'utf8')).toMatch(/^\|1\|/);
    expect((await (await open({ knownHosts: file })).run('echo ok')).code).toBe(0);
  });

  it('negotiates the key type known_hosts has when the server has several', async () => {
    const ecdsa = makeHostKey('ecdsa');
    const multi = await startServer({ hostKeys: [hostKey, ecdsa], authorizedKeys: [userKey.publicKey] });
    try {
      const file = join(dir.path, 'kh-ecdsa');
      writeFileSync(file, `[127.0.0.1]:${multi.port} ${ecdsa.publicLine}\n`);
      const session = await openSession('gw1', sshSettings({ port: multi.port, knownHosts: file, identityFile: userKey.file }), noAgent);
      await session.close();
    } finally {
      await multi.close();
    }
  });

  it('refuses a revoked key', async () => {
    const file = join(dir.path, 'kh-revoked');
    writeFileSync(file, `@revoked * ${hostKey.publicLine}\n[127.0.0.1]:${server.port} ${hostKey.publicLine}\n`);
    const error = await remoteError(open({ knownHosts: file }));
    expect(error.reason).toBe('hostkey');
    expect(error.message).toMatch(/REVOKED.*kh-revoked:1/);
  });
});

describe('broken hosts', () => {
  it('reports a refused connection as unreachable, fast', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const error = await remoteError(open({ port }));
    expect(error.reason).toBe('unreachable');
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('times out a host that accepts TCP but never speaks SSH', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const error = await remoteError(open({ port: (silent.address() as net.AddressInfo).port, connectTimeoutMs: 500 }));
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(error.reason).toBe('timeout');
      expect(error.message).toContain('within 500 ms');
    } finally {
      silent.close();
      (silent as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    }
  });

  it('detects a host that stops answering mid-command through keepalives', async () => {
    const relay = await startFreezableRelay(server.port);
    try {
      const file = join(dir.path, 'kh-relay');
      writeFileSync(file, `[127.0.0.1]:${relay.port} ${hostKey.publicLine}\n`);
      const session = await open({ port: relay.port, knownHosts: file, keepaliveIntervalMs: 200, commandTimeoutMs: 15_000 });
      expect((await session.run('echo before')).stdout).toBe('before\n');
      const running = session.run('sleep 10');
      relay.freeze();
      const started = Date.now();
      const error = await remoteError(running);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(error.reason).toBe('unreachable');
      expect(error.message).toContain('no answer to 3 keepalives');
      expect((await remoteError(session.run('true'))).reason).toBe('unreachable');
    } finally {
      await relay.close();
    }
  });

  it('reports an sshd that closes the connection mid-command', async () => {
    const session = await open();
    const running = session.run('sleep 10');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const closing = server.close();
    const error = await remoteError(running);
    await closing;
    server = await startServer({ hostKeys: [hostKey], authorizedKeys: [userKey.publicKey], pathPrefix: join(dir.path, 'bin') });
    writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${hostKey.publicLine}\n`);
    expect(error.reason).toBe('unreachable');
    expect(error.message).toMatch(/connection closed while a command was running/);
  });
});

describe('authentication', () => {
  it('fails with an auth error listing what was tried', async () => {
    const stranger = makeUserKey(dir.path, 'id_retry_stranger');
    const error = await remoteError(open({ identityFile: stranger.file }));
    expect(error.reason).toBe('auth');
    expect(error.message).toContain(`authentication as lbprov on 127.0.0.1:${server.port} failed: tried identity file ${stranger.file}`);
  });

  describe('encrypted identity file', () => {
    const passphrase = 'correct horse 🐎 battery';
    let encrypted: ReturnType<typeof makeUserKey>;
    let encryptedServer: TestServer;
    let file: string;
    beforeAll(async () => {
      encrypted = makeUserKey(dir.path, 'id_encrypted', 'ed25519', passphrase);
      encryptedServer = await startServer({ hostKeys: [hostKey], authorizedKeys: [encrypted.publicKey] });
      file = join(dir.path, 'kh-enc');
      writeFileSync(file, `[127.0.0.1]:${encryptedServer.port} ${hostKey.publicLine}\n`);
    });
    afterAll(() => encryptedServer.close());
    const settings = () => sshSettings({ port: encryptedServer.port, knownHosts: file, identityFile: encrypted.file });

    it('decrypts with LBPROV_SSH_PASSPHRASE', async () => {
      const session = await openSession('gw1', settings(), { env: { LBPROV_SSH_PASSPHRASE: passphrase } });
      sessions.push(session);
      expect((await session.run('echo in')).stdout).toBe('in\n');
    });

    it('names the variable but never shows the passphrase or key when it is wrong or missing', async () => {
      const wrong = 'not-the-passphrase-xyzzy';
      const wrongError = await remoteError(openSession('gw1', settings(), { env: { LBPROV_SSH_PASSPHRASE: wrong } }));
      expect(wrongError.reason).toBe('auth');
      expect(wrongError.message).toContain(`cannot be decrypted with the passphrase from LBPROV_SSH_PASSPHRASE`);
      const missingError = await remoteError(openSession('gw1', settings(), { env: {} }));
      expect(missingError.message).toContain('is encrypted and no passphrase is available: set LBPROV_SSH_PASSPHRASE');
      const keyBody = readFileSync(encrypted.file, 'utf8').split('\n')[1] ?? '';
      for (const error of [wrongError, missingError]) {
        const shown = `${error.message} ${JSON.stringify(error.context)} ${error.stack}`;
        expect(shown).not.toContain(wrong);
        expect(shown).not.toContain(passphrase);
        expect(shown).not.toContain(keyBody);
      }
    });

    it('asks the prompt once per key file when there is no variable', async () => {
      let asked = 0;
      const prompt = async () => {
        asked += 1;
        return passphrase;
      };
      const [a, b] = await Promise.all([openSession('gw1', settings(), { env: {}, prompt }), openSession('gw2', settings(), { env: {}, prompt })]);
      sessions.push(a, b);
      expect(asked).toBe(1);
    });
  });

  describe('ssh-agent', () => {
    let agent: ChildProcess;
    const socket = join(dir.path, 'agent.sock');
    const agentKey = makeUserKey(dir.path, 'id_agent');
    beforeAll(async () => {
      agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      execFileSync('ssh-add', ['-q', agentKey.file], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
    });
    afterAll(() => {
      agent.kill();
    });

    it('tries agent keys before the identity file, as OpenSSH does', async () => {
      const both = await startServer({ hostKeys: [hostKey], authorizedKeys: [agentKey.publicKey, userKey.publicKey] });
      try {
        const file = join(dir.path, 'kh-agent');
        writeFileSync(file, `[127.0.0.1]:${both.port} ${hostKey.publicLine}\n`);
        const session = await openSession('gw1', sshSettings({ port: both.port, knownHosts: file, identityFile: userKey.file }), { env: { SSH_AUTH_SOCK: socket } });
        await session.close();
        expect(both.authAttempts[0]?.keyBlob?.equals(agentKey.publicKey.getPublicSSH())).toBe(true);
      } finally {
        await both.close();
      }
    });

    it('falls back to the identity file when the agent key is refused', async () => {
      const before = server.authAttempts.length;
      const session = await open({}, { env: { SSH_AUTH_SOCK: socket } });
      expect((await session.run('echo via-file')).stdout).toBe('via-file\n');
      const attempts = server.authAttempts.slice(before).map((a) => a.keyBlob?.toString('base64'));
      expect(attempts[0]).toBe(agentKey.publicKey.getPublicSSH().toString('base64'));
      expect(attempts.at(-1)).toBe(userKey.publicKey.getPublicSSH().toString('base64'));
    });

    it('survives a dead agent socket', async () => {
      const session = await open({}, { env: { SSH_AUTH_SOCK: join(dir.path, 'no-such-agent.sock') } });
      expect((await session.run('true')).code).toBe(0);
    });
  });
});

describe('command trace', () => {
  it('writes one JSON line per command, with mutating flags and without stdin', async () => {
    const file = join(dir.path, 'trace.jsonl');
    const trace = traceFromEnv({ LBPROV_TRACE: file });
    expect(trace).toBeDefined();
    expect(traceFromEnv({})).toBeUndefined();
    const session = await open({}, { trace });
    await session.run('cat >/dev/null', { stdin: 'TOP-SECRET-CONTENT', mutating: true });
    await session.run('exit 2');
    await remoteError(session.run('sleep 5', { timeoutMs: 200 }));
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('TOP-SECRET-CONTENT');
    const entries = text.trim().split('\n').map((line) => JSON.parse(line) as CommandTraceEntry);
    expect(entries.map(({ host, command, mutating, code }) => ({ host, command, mutating, code }))).toEqual([
      { host: 'gw1', command: 'cat >/dev/null', mutating: true, code: 0 },
      { host: 'gw1', command: 'exit 2', mutating: false, code: 2 },
      { host: 'gw1', command: 'sleep 5', mutating: false, code: null },
    ]);
    for (const entry of entries) {
      expect(Number.isNaN(Date.parse(entry.startedAt))).toBe(false);
      expect(entry.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(entries[2]?.durationMs).toBeGreaterThanOrEqual(150);
  });
});

describe('ProxyJump', () => {
  it('reaches the gateway through a jump host, checking each host key under its own name', async () => {
    const bastionKey = makeHostKey('ed25519');
    const bastion = await startServer({ hostKeys: [bastionKey], authorizedKeys: [userKey.publicKey], allowForwarding: true });
    // Only reachable by the bastion's forwarding in spirit: a distinct loopback address and name.
    const target = await startServer({ hostKeys: [hostKey], authorizedKeys: [userKey.publicKey], address: '127.0.0.2' });
    try {
      const file = join(dir.path, 'kh-jump');
      // The gateway's own key is known only under its name; the bastion's only under its own.
      writeFileSync(file, `[127.0.0.1]:${bastion.port} ${bastionKey.publicLine}\n[127.0.0.2]:${target.port} ${hostKey.publicLine}\n`);
      const session = await open({ host: '127.0.0.2', port: target.port, knownHosts: file, proxyJump: `jumper@127.0.0.1:${bastion.port}` });
      expect((await session.run('echo through')).stdout).toBe('through\n');
      expect(target.connections).toBe(1);
      expect(bastion.connections).toBe(1);
      expect(bastion.authAttempts.at(-1)?.user).toBe('jumper');
      await session.close();

      writeFileSync(file, `[127.0.0.2]:${target.port} ${hostKey.publicLine}\n`);
      const error = await remoteError(open({ host: '127.0.0.2', port: target.port, knownHosts: file, proxyJump: `127.0.0.1:${bastion.port}` }));
      expect(error.reason).toBe('hostkey');
      expect(error.message).toMatch(new RegExp(`^gw1: jump host 127\\.0\\.0\\.1:${bastion.port}: host \\[127\\.0\\.0\\.1\\]:${bastion.port} is not in`));
      // A gateway key that the bastion's name vouches for is still refused under the gateway's name.
      writeFileSync(file, `[127.0.0.1]:${bastion.port} ${bastionKey.publicLine}\n[127.0.0.1]:${target.port} ${hostKey.publicLine}\n`);
      const unknownTarget = await remoteError(open({ host: '127.0.0.2', port: target.port, knownHosts: file, proxyJump: `127.0.0.1:${bastion.port}` }));
      expect(unknownTarget.message).toMatch(new RegExp(`^gw1: host \\[127\\.0\\.0\\.2\\]:${target.port} is not in`));
    } finally {
      await target.close();
      await bastion.close();
    }
  });
});

describe('connection retries', () => {
  /** In front of the server: drops the first `drops` connections at once, as an sshd past its MaxStartups does. */
  async function sheddingFront(drops: number): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
    let accepted = 0;
    const sockets = new Set<net.Socket>();
    const front = net.createServer((client) => {
      sockets.add(client);
      client.on('error', () => {});
      if (++accepted <= drops) {
        client.destroy();
        return;
      }
      const upstream = net.connect(server.port, '127.0.0.1');
      sockets.add(upstream);
      upstream.on('error', () => {});
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    return {
      port: (front.address() as net.AddressInfo).port,
      accepted: () => accepted,
      close: () => new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        front.close(() => resolve());
      }),
    };
  }

  it('tries a dropped handshake again with backoff, and says how often', async () => {
    const front = await sheddingFront(2);
    writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${hostKey.publicLine}\n[127.0.0.1]:${front.port} ${hostKey.publicLine}\n`);
    const retries: number[] = [];
    try {
      const started = Date.now();
      const session = await open({ port: front.port, connectionAttempts: 3 }, { onRetry: (_error, delayMs) => retries.push(delayMs) });
      expect((await session.run('echo up')).stdout).toBe('up\n');
      expect(front.accepted()).toBe(3);
      expect(retries).toHaveLength(2);
      // 500 ms then 1 s, each with jitter in [0.5, 1.5).
      expect(retries[0]).toBeGreaterThanOrEqual(250);
      expect(retries[1]).toBeGreaterThanOrEqual(500);
      expect(Date.now() - started).toBeGreaterThanOrEqual(retries[0]! + retries[1]!);
    } finally {
      await front.close();
    }
  });

  it('gives up after its attempts, saying how many it made', async () => {
    const front = await sheddingFront(5);
    try {
      const error = await remoteError(open({ port: front.port, connectionAttempts: 2 }));
      expect(error.reason).toBe('unreachable');
      expect(error.message).toMatch(/\(after 2 attempts\)$/);
      expect(front.accepted()).toBe(2);
    } finally {
      await front.close();
    }
  });

  it('never retries a failure that another try cannot fix (authentication)', async () => {
    const stranger = makeUserKey(dir.path, 'id_stranger');
    let retried = 0;
    const error = await remoteError(open({ identityFile: stranger.file, connectionAttempts: 3 }, { onRetry: () => retried++ }));
    expect(error.reason).toBe('auth');
    expect(retried).toBe(0);
  });
});
