import { describe, expect, it } from 'vitest';
import { HandshakePacer } from '../../src/ssh/handshake-pacer.js';

/** Runs `count` handshakes to the given first hops and returns the most in flight at once, per hop and overall. */
async function peaks(pacer: HandshakePacer, hops: readonly string[]): Promise<{ perHop: Map<string, number>; overall: number }> {
  const now = new Map<string, number>();
  const perHop = new Map<string, number>();
  let inFlight = 0;
  let overall = 0;
  await Promise.all(
    hops.map((hop) =>
      pacer.pace(hop, async () => {
        now.set(hop, (now.get(hop) ?? 0) + 1);
        perHop.set(hop, Math.max(perHop.get(hop) ?? 0, now.get(hop)!));
        overall = Math.max(overall, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        now.set(hop, now.get(hop)! - 1);
        inFlight--;
      }),
    ),
  );
  return { perHop, overall };
}

describe('HandshakePacer', () => {
  it('keeps handshakes through one jump host under its MaxStartups and bounds the run overall', async () => {
    const bastion = Array<string>(50).fill('bastion:22');
    const direct = Array.from({ length: 100 }, (_, i) => `198.18.0.${i}:22`);
    const { perHop, overall } = await peaks(new HandshakePacer(32, 8), [...bastion, ...direct]);
    expect(perHop.get('bastion:22')).toBe(8);
    expect(overall).toBe(32);
    expect(Math.max(...direct.map((hop) => perHop.get(hop)!))).toBe(1);
  });

  it('passes results and failures through', async () => {
    const pacer = new HandshakePacer(1, 1);
    await expect(pacer.pace('a:22', async () => 42)).resolves.toBe(42);
    await expect(pacer.pace('a:22', async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    await expect(pacer.pace('a:22', async () => 'still usable')).resolves.toBe('still usable');
  });
});
