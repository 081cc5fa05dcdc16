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
