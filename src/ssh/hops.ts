/**
 * Logging in to one hop (a jump host or the gateway): TCP, key exchange, the host key checked
 * against known_hosts under the hop's own name, authentication; and the tunnel to the next hop.
 */
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ConnectConfig } from 'ssh2';
import { RemoteError, TransientConnectError } from '../errors.js';
import type { SshSettings } from '../model/inventory.js';
import { CIPHER_ALGORITHMS, hostKeyAlgorithmsFor, KEX_ALGORITHMS, MAC_ALGORITHMS } from './algorithms.js';
import { authHandlerFor, describeCredentials, type Credentials } from './auth.js';
import { appendKnownHost, fingerprintSha256, keyTypeOf, knownHostsName, knownKeyTypes, verifyHostKey, type KnownHosts } from './known-hosts.js';
import type { SessionCache } from './session-cache.js';

/** OpenSSH's ServerAliveCountMax default. */
const KEEPALIVE_COUNT_MAX = 3;

export interface Hop {
  host: string;
  port: number;
  user: string;
}

export interface HopContext {
  gatewayName: string;
  /** Message prefix naming the jump host, empty for the gateway itself. */
  via: string;
  hop: Hop;
  sock: Duplex | undefined;
  ssh: SshSettings;
  knownHosts: KnownHosts;
  credentials: Credentials;
  acceptNew: boolean;
  cache: SessionCache | undefined;
}

export function connectHop(context: HopContext): Promise<ssh2.Client> {
  const { gatewayName, via, hop, ssh, knownHosts } = context;
  const name = knownHostsName(hop.host, hop.port);
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    let settled = false;
    let hostKeyRefusal: RemoteError | undefined;
    const fail = (error: RemoteError): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(error);
    };
    const refuse = (message: string): false => {
      hostKeyRefusal = new RemoteError(`${via}${message}`, { host: gatewayName }, 'hostkey');
      return false;
    };
    const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
      const verdict = verifyHostKey(knownHosts, name, key);
      const fingerprint = `${keyTypeOf(key) ?? 'unknown'} key ${fingerprintSha256(key)}`;
      switch (verdict.kind) {
        case 'match':
          verify(true);
          return;
        case 'revoked':
          verify(refuse(`host key for ${name} is REVOKED (${fingerprint}, ${verdict.entry.file}:${verdict.entry.line})`));
          return;
        case 'changed': {
          const lines = verdict.entries.map((entry) => `${entry.file}:${entry.line}`).join(', ');
          verify(
            refuse(
              `REMOTE HOST KEY CHANGED for ${name}: it now offers ${fingerprint}, which does not match ${lines}. ` +
                'Someone could be intercepting the connection. If the key was legitimately replaced, remove the old entry ' +
                `(ssh-keygen -R '${name}' -f ${knownHosts.file}) and connect again.`,
            ),
          );
          return;
        }
        case 'unknown':
          if (!context.acceptNew) {
            verify(
              refuse(
                `host ${name} is not in ${knownHosts.file}; it offers ${fingerprint}. Check the fingerprint out of band, ` +
                  'then add it (ssh-keyscan) or rerun with --accept-new.',
              ),
            );
            return;
          }
          appendKnownHost(knownHosts.file, name, key).then(
            () => {
              context.cache?.forgetKnownHosts(knownHosts.file);
              verify(true);
            },
            (error: unknown) => verify(refuse(`cannot record the key of ${name} in ${knownHosts.file}: ${(error as Error).message}`)),
          );
      }
    };
    client.on('ready', () => {
      settled = true;
      resolve(client);
    });
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      // Agent trouble is not fatal: ssh2 moves on to the identity file.
      if (error.level === 'agent') return;
      fail(hostKeyRefusal ?? connectError(context, error));
    });
    client.on('close', () => fail(hostKeyRefusal ?? new TransientConnectError(`${via}connection to ${hop.host}:${hop.port} closed during the SSH handshake`, { host: gatewayName }, 'unreachable')));
    const config: ConnectConfig = {
      host: hop.host,
      port: hop.port,
      username: hop.user,
      readyTimeout: ssh.connectTimeoutMs,
      keepaliveInterval: ssh.keepaliveIntervalMs,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      algorithms: {
        kex: [...KEX_ALGORITHMS],
        cipher: [...CIPHER_ALGORITHMS],
        hmac: [...MAC_ALGORITHMS],
        serverHostKey: hostKeyAlgorithmsFor(knownKeyTypes(knownHosts, name)),
        compress: ['none'],
      },
      hostVerifier,
      authHandler: authHandlerFor(hop.user, context.credentials),
      ...(context.sock ? { sock: context.sock } : {}),
    };
    try {
      client.connect(config);
    } catch (error) {
      fail(new RemoteError(`${via}cannot start SSH: ${(error as Error).message}`, { host: gatewayName }, 'unreachable'));
    }
  });
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
/** Of those, the ones that often pass within seconds (a neighbour entry being resolved, an sshd restarting or shedding load). */
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN']);

function connectError(context: HopContext, error: Error & { level?: string; code?: string }): RemoteError {
  const { gatewayName, via, hop, ssh } = context;
  const target = `${hop.user}@${hop.host}:${hop.port}`;
  const ctx = { host: gatewayName };
  if (error.code !== undefined && UNREACHABLE_CODES.has(error.code)) {
    const Failure = TRANSIENT_CODES.has(error.code) ? TransientConnectError : RemoteError;
    return new Failure(`${via}cannot connect to ${hop.host}:${hop.port} (${error.code})`, ctx, 'unreachable');
  }
  if (error.level === 'client-timeout') {
    return new RemoteError(`${via}no SSH login to ${target} within ${ssh.connectTimeoutMs} ms (host down, filtered or overloaded)`, ctx, 'timeout');
  }
  if (error.level === 'client-authentication') {
    return new RemoteError(`${via}authentication as ${hop.user} on ${hop.host}:${hop.port} failed: ${describeCredentials(context.credentials)}`, ctx, 'auth');
  }
  // What ssh2 says when the server closes before its banner: an sshd past its MaxStartups.
  const Failure = /before handshake/i.test(error.message) ? TransientConnectError : RemoteError;
  return new Failure(`${via}SSH connection to ${target} failed: ${error.message}`, ctx, 'unreachable');
}

export function forwardOut(client: ssh2.Client, gatewayName: string, via: string, next: Hop): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, next.host, next.port, (error, stream) => {
      if (error) {
        reject(new RemoteError(`${via}cannot open a tunnel to ${next.host}:${next.port}: ${error.message}`, { host: gatewayName }, 'unreachable'));
      } else {
        resolve(stream);
      }
    });
  });
}
