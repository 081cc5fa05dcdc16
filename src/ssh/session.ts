/**
 * One SSH connection per gateway (optionally through ProxyJump hosts); every command is an exec
 * channel on it. Host keys are checked against known_hosts on every hop, each command has a
 * timeout, and keepalives turn a dead host into an error instead of a hang.
 */
import type { Duplex } from 'node:stream';
import pLimit from 'p-limit';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { RemoteError, TransientConnectError } from '../errors.js';
import type { SshSettings } from '../model/inventory.js';
import { expandHome, loadCredentials, type CredentialSources } from './auth.js';
import { loadKnownHosts } from './known-hosts.js';
import { connectHop, forwardOut, type Hop } from './hops.js';
import { SessionCache } from './session-cache.js';
import { shellQuote } from '../remote/quote.js';
import { parseProxyJump } from './proxy-jump.js';
import type { CommandTrace } from './trace.js';

export type { CommandTrace } from './trace.js';
export { SessionCache } from './session-cache.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal?: string;
}

export interface RunOptions {
  /** Written to the command's stdin, which is then closed. Never traced or logged. */
  stdin?: string;
  /** Defaults to SshSettings.commandTimeoutMs. */
  timeoutMs?: number;
  /** Run as root: through `sudo -n` when the gateway's settings say `become`. */
  privileged?: boolean;
  /** Changes the gateway (recorded in the trace so idempotency can be asserted). */
  mutating?: boolean;
}

export interface RemoteSession {
  /** Gateway name, for messages. */
  readonly host: string;
  /** Runs `command` on a new channel of the session's connection. A non-zero exit is a result, not an error. */
  run(command: string, opts?: RunOptions): Promise<CommandResult>;
  close(): Promise<void>;
}

export interface OpenSessionOptions extends CredentialSources {
  /** Record unknown host keys in known_hosts (OpenSSH StrictHostKeyChecking=accept-new). */
  acceptNew?: boolean;
  trace?: CommandTrace;
  /** The whole-host timeout: past this, the connection is closed and every command on it fails. */
  lifetimeMs?: number;
  /** Shared by the connections of one run; without it each connection reads its files anew (and is not paced). */
  cache?: SessionCache;
  /** Told of each failed attempt that is tried again. */
  onRetry?: (error: TransientConnectError, delayMs: number) => void;
}


/** OpenSSH's ServerAliveCountMax default. */
const KEEPALIVE_COUNT_MAX = 3;
/** Below sshd's default MaxSessions (10), leaving room for a human's concurrent session. */
const MAX_CHANNELS = 8;
/** Facts of a sane gateway are kilobytes; this only stops a hostile one from exhausting memory. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
const MAX_COMMAND_IN_MESSAGES = 200;

export function truncateCommand(command: string): string {
  return command.length > MAX_COMMAND_IN_MESSAGES ? `${command.slice(0, MAX_COMMAND_IN_MESSAGES)}…` : command;
}

export async function openSession(gatewayName: string, ssh: SshSettings, opts: OpenSessionOptions = {}): Promise<RemoteSession> {
  const knownHostsFile = expandHome(ssh.knownHosts);
  const knownHosts = await (opts.cache ? opts.cache.knownHostsOf(knownHostsFile) : loadKnownHosts(knownHostsFile));
  const credentials = await (opts.cache ? opts.cache.credentialsOf(ssh.identityFile, opts) : loadCredentials(ssh.identityFile, opts));
  // Hops without a user or port log in like the gateway does, on port 22.
  const jumps = parseProxyJump(ssh.proxyJump, gatewayName).map((hop) => ({ host: hop.host, port: hop.port ?? 22, user: hop.user ?? ssh.user }));
  const hops: Hop[] = [...jumps, { host: ssh.host, port: ssh.port, user: ssh.user }];
  const login = async (): Promise<ssh2.Client[]> => {
    const clients: ssh2.Client[] = [];
    try {
      let sock: Duplex | undefined;
      for (const [index, hop] of hops.entries()) {
        const isTarget = index === hops.length - 1;
        const via = isTarget ? '' : `jump host ${hop.host}:${hop.port}: `;
        const client = await connectHop({ gatewayName, via, hop, sock, ssh, knownHosts, credentials, acceptNew: opts.acceptNew === true, cache: opts.cache });
        clients.push(client);
        const next = hops[index + 1];
        if (next) sock = await forwardOut(client, gatewayName, via, next);
      }
      return clients;
    } catch (error) {
      for (const client of clients.reverse()) client.end();
      throw error;
    }
  };
  const firstHop = `${hops[0]!.host}:${hops[0]!.port}`;
  const paced = (): Promise<ssh2.Client[]> => (opts.cache ? opts.cache.handshakes.pace(firstHop, login) : login());
  const clients = await withConnectRetries(paced, ssh.connectionAttempts, opts.onRetry);
  return new Ssh2Session(gatewayName, clients, ssh, opts.trace, opts.lifetimeMs);
}

/** First pause between two connection attempts; it doubles each time (with jitter, so a fleet does not retry in step). */
const RETRY_BASE_MS = 500;

/**
 * Tries `connect` up to `attempts` times while it fails transiently (OpenSSH's ConnectionAttempts,
 * Ansible's connection retries); an authentication, host key or timeout failure ends it at once.
 */
export async function withConnectRetries<T>(connect: () => Promise<T>, attempts: number, onRetry?: (error: TransientConnectError, delayMs: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (error) {
      if (!(error instanceof TransientConnectError) || attempt >= attempts) {
        if (error instanceof TransientConnectError && attempts > 1) error.message += ` (after ${attempts} attempts)`;
        throw error;
      }
      const delayMs = Math.round(RETRY_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random()));
      onRetry?.(error, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}


const SUDO_REFUSED = /^sudo: (a password is required|a terminal is required|.*is not in the sudoers file)|^Sorry, user \S+ is not allowed/m;

class Ssh2Session implements RemoteSession {
  /** Why the connection is gone, once it is; later runs fail with it. */
  private lostBecause: string | undefined;
  /** Reject callbacks of commands in flight, called when the connection is lost. */
  private readonly inFlight = new Set<(because: string) => void>();
  private readonly channels = pLimit(MAX_CHANNELS);
  private readonly target: ssh2.Client;
  private readonly targetClosed: Promise<void>;
  private readonly lifetime: NodeJS.Timeout | undefined;

  constructor(
    readonly host: string,
    /** Jump hosts first, the gateway last. */
    private readonly clients: ssh2.Client[],
    private readonly ssh: SshSettings,
    private readonly trace: CommandTrace | undefined,
    lifetimeMs: number | undefined,
  ) {
    const target = clients[clients.length - 1];
    if (!target) throw new Error('a session needs a connection');
    this.target = target;
    if (lifetimeMs !== undefined) {
      // A gateway that answers every command just in time must still not hold the run forever.
      this.lifetime = setTimeout(() => {
        this.lose(`gave up on the gateway: whole-host timeout (${Math.round(lifetimeMs / 1000)} s) reached`);
        for (const client of [...this.clients].reverse()) client.end();
      }, lifetimeMs);
      this.lifetime.unref();
    }
    target.on('error', (error: Error & { level?: string }) => {
      this.lose(error.level === 'client-timeout' ? `connection lost (no answer to ${KEEPALIVE_COUNT_MAX} keepalives)` : `connection lost (${error.message})`);
    });
    this.targetClosed = new Promise((resolve) => {
      target.on('close', () => {
        this.lose('connection closed');
        resolve();
      });
    });
  }

  private lose(because: string): void {
    this.lostBecause ??= because;
    for (const reject of this.inFlight) reject(this.lostBecause);
  }

  async run(command: string, opts: RunOptions = {}): Promise<CommandResult> {
    const sudo = opts.privileged === true && this.ssh.become;
    const sent = sudo ? `sudo -n -- sh -c ${shellQuote(command)}` : command;
    const startedAt = new Date();
    let code: number | null = null;
    try {
      const result = await this.channels(() => this.exec(sent, opts.stdin, opts.timeoutMs ?? this.ssh.commandTimeoutMs));
      code = result.code;
      if (sudo) this.checkSudo(sent, result);
      return result;
    } finally {
      this.trace?.record({
        host: this.host,
        command: sent,
        mutating: opts.mutating === true,
        startedAt: startedAt.toISOString(),
        durationMs: Date.now() - startedAt.getTime(),
        code,
      });
    }
  }

  /** sudo -n exits 1 with a fixed message instead of prompting: turn that into an actionable error. */
  private checkSudo(sent: string, result: CommandResult): void {
    const context = { host: this.host, command: truncateCommand(sent), stderr: result.stderr, exitCode: result.code };
    if (result.code === 1 && SUDO_REFUSED.test(result.stderr)) {
      throw new RemoteError(
        `sudo requires a password for user ${this.ssh.user} (or refuses it); lbprov never types passwords: ` +
          `allow ${this.ssh.user} NOPASSWD sudo for lbprov's commands, or connect as root`,
        context,
        'auth',
      );
    }
    if (result.code === 127 && /sudo: (command )?not found/.test(result.stderr)) {
      throw new RemoteError('become is set but sudo is not installed on the gateway', context, 'prerequisite');
    }
  }

  private exec(command: string, stdin: string | undefined, timeoutMs: number): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      if (this.lostBecause !== undefined) {
        reject(new RemoteError(`cannot run a command: ${this.lostBecause}`, { host: this.host, command: truncateCommand(command) }, 'unreachable'));
        return;
      }
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let outputBytes = 0;
      let exit: { code: number | null; signal?: string } = { code: null };
      let channel: ClientChannel | undefined;
      let done = false;
      const context = (): { host: string; command: string; stderr: string } => ({
        host: this.host,
        command: truncateCommand(command),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inFlight.delete(onLost);
        settle();
      };
      const abort = (error: RemoteError): void => {
        finish(() => reject(error));
        stopChannel(channel);
      };
      const onLost = (because: string): void =>
        finish(() => reject(new RemoteError(`${because} while a command was running`, { ...context(), exitCode: null }, 'unreachable')));
      this.inFlight.add(onLost);
      const timer = setTimeout(
        () => abort(new RemoteError(`command timed out after ${timeoutMs} ms`, { ...context(), exitCode: null }, 'timeout')),
        timeoutMs,
      );
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        outputBytes += chunk.length;
        if (outputBytes > MAX_OUTPUT_BYTES) {
          abort(new RemoteError(`command output exceeds ${MAX_OUTPUT_BYTES} bytes`, context(), 'command'));
          return;
        }
        into.push(chunk);
      };
      this.target.exec(command, (error, stream) => {
        if (error) {
          finish(() => reject(new RemoteError(`cannot start command: ${error.message}`, context(), 'command')));
          return;
        }
        if (done) {
          stopChannel(stream);
          return;
        }
        channel = stream;
        stream.on('data', collect(stdout));
        stream.stderr.on('data', collect(stderr));
        stream.on('exit', (code: number | null, signal?: string) => {
          exit = signal === undefined ? { code } : { code, signal };
        });
        stream.on('close', () =>
          finish(() =>
            resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), ...exit }),
          ),
        );
        stream.end(stdin);
      });
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.lifetime);
    this.lose('session closed');
    for (const client of [...this.clients].reverse()) client.end();
    await this.targetClosed;
  }
}

/** ssh2's internals needed to signal a channel whose stdin is already closed. */
interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
}

function stopChannel(channel: ClientChannel | undefined): void {
  if (!channel) return;
  try {
    // ClientChannel.signal() is a no-op once stdin has ended, which run() always does. OpenSSH
    // killpg()s the command on a signal request, except for root logins (no post-auth privilege
    // separation there: it logs "session signalling requires privilege separation"). Closing the
    // channel alone leaves the command running.
    const internals = channel as unknown as ChannelInternals;
    const { id, state } = internals.outgoing ?? {};
    if (id !== undefined && (state === 'open' || state === 'eof')) internals._client?._protocol?.signal?.(id, 'KILL');
    channel.close();
  } catch {
    // Already closed.
  }
}
