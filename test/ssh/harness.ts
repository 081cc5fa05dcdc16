/**
 * In-process SSH servers (ssh2 Server) on 127.0.0.1 for the transport tests. Commands really run
 * under `sh -c` in a temp dir, so stdin, exit codes and stderr are those of a real shell.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import type { SshSettings } from '../../src/model/inventory.js';

export function tempDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `lbprov-ssh-test-${process.pid}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface KeyPair {
  /** Private key file written by ssh-keygen. */
  file: string;
  publicLine: string;
  publicKey: ParsedKey;
}

/** A client key made by the real ssh-keygen (optionally encrypted with `passphrase`). */
export function makeUserKey(dir: string, name: string, type: 'ed25519' | 'ecdsa' = 'ed25519', passphrase = ''): KeyPair {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', name, '-f', file]);
  const publicLine = readFileSync(`${file}.pub`, 'utf8').trim();
  const publicKey = ssh2.utils.parseKey(publicLine);
  if (publicKey instanceof Error || Array.isArray(publicKey)) throw new Error('cannot parse generated key');
  return { file, publicLine, publicKey };
}

export interface HostKey {
  privatePem: string;
  /** "type base64", as in known_hosts. */
  publicLine: string;
  type: string;
  blob: Buffer;
}

export function makeHostKey(type: 'ed25519' | 'ecdsa' = 'ed25519'): HostKey {
  const pair = type === 'ed25519' ? ssh2.utils.generateKeyPairSync('ed25519') : ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 });
  const [keyType, base64] = pair.public.split(' ');
  if (!keyType || !base64) throw new Error('bad generated key');
  return { privatePem: pair.private, publicLine: `${keyType} ${base64}`, type: keyType, blob: Buffer.from(base64, 'base64') };
}

export interface AuthAttempt {
  method: string;
  user: string;
  keyBlob?: Buffer;
}

export interface TestServer {
  port: number;
  authAttempts: AuthAttempt[];
  commands: string[];
  connections: number;
  close(): Promise<void>;
}

export interface TestServerOptions {
  hostKeys: HostKey[];
  authorizedKeys: ParsedKey[];
  /** Directories prepended to PATH of executed commands (fake sudo lives there). */
  pathPrefix?: string;
  /** Forward direct-tcpip channels (act as a jump host). */
  allowForwarding?: boolean;
  /** Loopback address to listen on (default 127.0.0.1). */
  address?: string;
}

export async function startServer(options: TestServerOptions): Promise<TestServer> {
  const authAttempts: AuthAttempt[] = [];
  const commands: string[] = [];
  const clients = new Set<ssh2.Connection>();
  const kills = new Set<(signal: NodeJS.Signals) => void>();
  let connections = 0;
  const server = new ssh2.Server({ hostKeys: options.hostKeys.map((key) => key.privatePem) }, (conn) => {
    connections += 1;
    clients.add(conn);
    conn.on('close', () => clients.delete(conn));
    // Without this, a client that refuses our host key crashes the test process.
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') {
        authAttempts.push({ method: ctx.method, user: ctx.username });
        ctx.reject(['publickey']);
        return;
      }
      authAttempts.push({ method: ctx.method, user: ctx.username, keyBlob: ctx.key.data });
      const allowed = options.authorizedKeys.find((key) => key.getPublicSSH().equals(ctx.key.data));
      if (!allowed) {
        ctx.reject(['publickey']);
        return;
      }
      if (!ctx.signature) {
        ctx.accept();
        return;
      }
      if (ctx.blob && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) ctx.accept();
      else ctx.reject(['publickey']);
    });
    conn.on('ready', () => {
      conn.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (acceptExec, _reject, info) => {
          commands.push(info.command);
          const stream = acceptExec();
          const env = { ...process.env, PATH: `${options.pathPrefix ? `${options.pathPrefix}:` : ''}${process.env['PATH'] ?? ''}` };
          // Own process group, so a kill reaches the command's children too (as sshd's killpg does).
          const child = spawn('sh', ['-c', info.command], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
          const killGroup = (signal: NodeJS.Signals): void => {
            try {
              if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, signal);
            } catch {
              // Already gone.
            }
          };
          stream.pipe(child.stdin).on('error', () => {});
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          // A signal request (sent on timeout) kills the process, like OpenSSH does.
          session.on('signal', (_accept, _reject, signal) => killGroup(`SIG${signal.name}` as NodeJS.Signals));
          stream.on('close', () => killGroup('SIGKILL'));
          kills.add(killGroup);
          child.on('close', (code, signal) => {
            kills.delete(killGroup);
            if (signal) stream.exit(signal.replace(/^SIG/, ''), false, '');
            else stream.exit(code ?? 255);
            stream.end();
          });
        });
      });
      if (options.allowForwarding) {
        conn.on('tcpip', (accept, _reject, info) => {
          const channel = accept();
          const upstream = net.connect(info.destPort, info.destIP);
          upstream.on('error', () => channel.close());
          channel.pipe(upstream).pipe(channel);
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, options.address ?? '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    authAttempts,
    commands,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const kill of kills) kill('SIGKILL');
        for (const client of clients) client.end();
        server.close(() => resolve());
      }),
  };
}

/** A TCP relay that can be frozen: traffic stops in both directions, like a host that died. */
export async function startFreezableRelay(targetPort: number): Promise<{ port: number; freeze: () => void; close: () => Promise<void> }> {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
    }
    client.on('data', (data) => frozen || upstream.write(data));
    upstream.on('data', (data) => frozen || client.write(data));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze: () => {
      frozen = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export function writeExecutable(path: string, script: string): void {
  writeFileSync(path, script);
  chmodSync(path, 0o755);
}

export function sshSettings(overrides: Partial<SshSettings> & Pick<SshSettings, 'port' | 'knownHosts'>): SshSettings {
  return {
    host: '127.0.0.1',
    user: 'lbprov',
    become: false,
    connectTimeoutMs: 5000,
    commandTimeoutMs: 5000,
    keepaliveIntervalMs: 0,
    connectionAttempts: 1,
    ...overrides,
  };
}
