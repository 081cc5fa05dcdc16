/**
 * How many SSH handshakes a run has in flight. sshd sheds connections that have not authenticated
 * yet past its MaxStartups (default 10:30:100: from 10 on, 30 % are dropped): every connection
 * through one jump host counts against that host's limit, so at most PER_FIRST_HOP handshakes go
 * to one first hop at once. Across hops a bound keeps the controller's key exchanges from starving
 * the event loop (keepalives and timers of open connections) when a thousand gateways start at once.
 */
import pLimit, { type LimitFunction } from 'p-limit';

/** Below sshd's default MaxStartups start (10), leaving room for an admin's own login. */
export const HANDSHAKES_PER_FIRST_HOP = 8;
export const HANDSHAKES_IN_FLIGHT = 32;

export class HandshakePacer {
  private readonly all: LimitFunction;
  private readonly byFirstHop = new Map<string, LimitFunction>();

  constructor(
    inFlight = HANDSHAKES_IN_FLIGHT,
    private readonly perFirstHop = HANDSHAKES_PER_FIRST_HOP,
  ) {
    this.all = pLimit(inFlight);
  }

  /** Runs `handshake` once both its first hop (host:port) and the run have room for it. */
  pace<T>(firstHop: string, handshake: () => Promise<T>): Promise<T> {
    let hop = this.byFirstHop.get(firstHop);
    if (!hop) {
      hop = pLimit(this.perFirstHop);
      this.byFirstHop.set(firstHop, hop);
    }
    return hop(() => this.all(handshake));
  }
}
