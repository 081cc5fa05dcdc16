/** Typed errors carrying the context an admin needs to act on them. */

export class LbprovError extends Error {
  override name = 'LbprovError';
}

/** Bad inventory/playbook/template input. `location` is "file:line" and `key` the dotted path. */
export class InputError extends LbprovError {
  override name = 'InputError';
  constructor(
    readonly location: string,
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${location}: ${key}: ${problem}`);
  }
}

export interface RemoteContext {
  host: string;
  command?: string;
  stderr?: string;
  exitCode?: number | null;
  resource?: string;
}

/** Anything that went wrong talking to or on a gateway. */
export class RemoteError extends LbprovError {
  override name = 'RemoteError';
  constructor(
    message: string,
    readonly context: RemoteContext,
    readonly reason: 'unreachable' | 'auth' | 'hostkey' | 'timeout' | 'command' | 'facts' | 'apply' | 'locked' | 'prerequisite' = 'command',
  ) {
    super(`${context.host}: ${message}`);
  }
}

/**
 * A connection attempt that failed in a way that often passes (no route yet, a reset, a refusal,
 * a handshake dropped before authentication by an sshd at its MaxStartups): worth another try.
 */
export class TransientConnectError extends RemoteError {
  override name = 'TransientConnectError';
}

/**
 * Text that a parser or canonicaliser cannot accept: gateway output (iptables-save,
 * `ip -j`) or a rendered rule. Callers add the host or the template location
 * (RemoteError / InputError); this carries what was read and where in it.
 */
export class ParseError extends LbprovError {
  override name = 'ParseError';
  constructor(
    /** What was being read: "iptables-save", "iptables rule", "ip -j rule", ... */
    readonly what: string,
    readonly problem: string,
    /** 1-based line number in the input, when the input has lines. */
    readonly line?: number,
    /** The offending text, shortened and with control characters escaped. */
    readonly excerpt?: string,
  ) {
    super(`${what}${line === undefined ? '' : ` line ${line}`}: ${problem}${excerpt === undefined ? '' : `: ${excerpt}`}`);
  }
}

/** A short, printable rendering of untrusted text for error messages and warnings. */
export function excerptOf(text: string, max = 120): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}
