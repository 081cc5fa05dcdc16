import { LbprovError } from '../errors.js';

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
