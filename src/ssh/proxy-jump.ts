import { RemoteError } from '../errors.js';

export interface JumpHop {
  host: string;
  port?: number;
  user?: string;
}

/** OpenSSH ProxyJump: `[user@]host[:port][,...]` (host may be bracketed, as `ssh -G` prints it), or `none`. */
export function parseProxyJump(spec: string | undefined, gatewayName: string): JumpHop[] {
  if (spec === undefined || spec === '' || spec === 'none') return [];
  return spec.split(',').map((part) => {
    const match = /^(?:([^@\s]+)@)?(?:\[([^\]\s]+)\]|([^@:[\]\s]+))(?::(\d{1,5}))?$/.exec(part.trim());
    const host = match?.[2] ?? match?.[3];
    if (!match || host === undefined) throw new RemoteError(`invalid ProxyJump hop "${part}"`, { host: gatewayName }, 'prerequisite');
    return { host, ...(match[4] ? { port: Number(match[4]) } : {}), ...(match[1] ? { user: match[1] } : {}) };
  });
}
