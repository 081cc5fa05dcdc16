/**
 * Client authentication in OpenSSH's order: keys held by ssh-agent first, then the identity
 * file. Passphrases come from LBPROV_SSH_PASSPHRASE or a prompt on a terminal, and go nowhere
 * but the key parser.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, ParsedKey } from 'ssh2';

export const PASSPHRASE_ENV = 'LBPROV_SSH_PASSPHRASE';

export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
}

export interface Credentials {
  /** ssh-agent socket (SSH_AUTH_SOCK). */
  agentSocket?: string;
  identity?: { file: string; key: ParsedKey };
  /** Why a configured identity could not be used; shown if authentication then fails. */
  problems: string[];
}

export type PassphrasePrompt = (question: string) => Promise<string>;

export interface CredentialSources {
  env?: NodeJS.ProcessEnv;
  /** Asked only when the key is encrypted, no passphrase is in the environment and stdin is a TTY. */
  prompt?: PassphrasePrompt;
}

/** Prompted passphrases by key path: one prompt per key file per run, however many gateways use it. */
const promptedPassphrases = new Map<string, Promise<string>>();

export async function loadCredentials(identityFile: string | undefined, sources: CredentialSources = {}): Promise<Credentials> {
  const env = sources.env ?? process.env;
  const problems: string[] = [];
  const agentSocket = env['SSH_AUTH_SOCK'] || undefined;
  if (identityFile === undefined) return { ...(agentSocket ? { agentSocket } : {}), problems };
  const file = expandHome(identityFile);
  const loaded = await loadIdentity(file, env, sources.prompt ?? (process.stdin.isTTY ? promptOnTerminal : undefined));
  if (typeof loaded === 'string') {
    problems.push(loaded);
    return { ...(agentSocket ? { agentSocket } : {}), problems };
  }
  return { ...(agentSocket ? { agentSocket } : {}), identity: { file, key: loaded }, problems };
}

/** The key, or a secrets-free explanation of why it cannot be used. */
async function loadIdentity(file: string, env: NodeJS.ProcessEnv, prompt: PassphrasePrompt | undefined): Promise<ParsedKey | string> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (error) {
    return `identity file ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const plain = parsePrivateKey(data, undefined);
  if (!(plain instanceof Error)) return plain;
  if (!/no passphrase given/.test(plain.message)) return `identity file ${file} is not a private key ssh2 can use`;
  // Empty counts as unset: an encrypted key never has an empty passphrase.
  let passphrase = env[PASSPHRASE_ENV] || undefined;
  let origin = PASSPHRASE_ENV;
  if (passphrase === undefined) {
    if (!prompt) {
      return `identity file ${file} is encrypted and no passphrase is available: set ${PASSPHRASE_ENV} or run on a terminal`;
    }
    let prompted = promptedPassphrases.get(file);
    if (!prompted) {
      prompted = prompt(`Enter passphrase for ${file}: `);
      promptedPassphrases.set(file, prompted);
    }
    passphrase = await prompted;
    origin = 'the prompt';
  }
  const decrypted = parsePrivateKey(data, passphrase);
  return decrypted instanceof Error ? `identity file ${file} cannot be decrypted with the passphrase from ${origin}` : decrypted;
}

function parsePrivateKey(data: Buffer, passphrase: string | undefined): ParsedKey | Error {
  const parsed = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) return parsed;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key?.isPrivateKey() ? key : new Error('not a private key');
}

/** Reads a line from the terminal without echoing it. */
function promptOnTerminal(question: string): Promise<string> {
  const { stdin, stderr } = process;
  return new Promise((resolve, reject) => {
    let answer = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
    };
    const onData = (chunk: Buffer): void => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') {
          finish();
          resolve(answer);
          return;
        }
        if (char === '\u0003') {
          finish();
          reject(new Error('passphrase prompt interrupted'));
          return;
        }
        answer = char === '\u007f' || char === '\b' ? answer.slice(0, -1) : answer + char;
      }
    };
    stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** Agent keys, then the identity file; `false` once both are spent. */
export function authHandlerFor(username: string, credentials: Credentials): AuthHandlerMiddleware {
  const methods: AnyAuthMethod[] = [];
  if (credentials.agentSocket) methods.push({ type: 'agent', username, agent: credentials.agentSocket });
  if (credentials.identity) methods.push({ type: 'publickey', username, key: credentials.identity.key });
  return (_methodsLeft, _partialSuccess, next) => {
    const method = methods.shift();
    // `false` ends authentication (documented by ssh2, missing from @types/ssh2).
    next(method ?? (false as unknown as AnyAuthMethod));
  };
}

/** What was tried, for an authentication failure message. */
export function describeCredentials(credentials: Credentials): string {
  const tried = [
    ...(credentials.agentSocket ? ['ssh-agent (SSH_AUTH_SOCK)'] : []),
    ...(credentials.identity ? [`identity file ${credentials.identity.file}`] : []),
  ];
  const summary = tried.length > 0 ? `tried ${tried.join(', then ')}` : 'no ssh-agent and no usable identity file';
  return [summary, ...credentials.problems].join('; ');
}
