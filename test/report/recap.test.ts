import { describe, expect, it } from 'vitest';
import { formatRecap } from '../../src/report/recap.js';
import { plainColours } from '../../src/report/plan-text.js';

describe('formatRecap', () => {
  it('says which gateways needed connection retries, and how many in all', () => {
    const text = formatRecap(
      [
        { gateway: 'gw1', status: 'ok', durationMs: 10 },
        { gateway: 'gw2', status: 'ok', durationMs: 10, connectRetries: 1 },
        { gateway: 'gw3', status: 'unreachable', durationMs: 10, connectRetries: 2, error: { message: 'gw3: cannot connect to 198.18.0.7:22 (EHOSTUNREACH) (after 3 attempts)', reason: 'unreachable' } },
      ],
      plainColours,
    );
    const lines = text.split('\n');
    expect(lines[1]).toMatch(/^gw1\s+ok\s*$/);
    expect(lines[2]).toMatch(/^gw2\s+ok\s+\(1 connect retry\)$/);
    expect(lines[3]).toMatch(/\(EHOSTUNREACH\) \(after 3 attempts\)\s+\(2 connect retries\)$/);
    expect(lines[4]).toBe('total 3: ok=2 changed=0 failed=0 unreachable=1 not-started=0 connect-retries=3 (2 gateways)');
  });

  it('says nothing of retries when there were none', () => {
    expect(formatRecap([{ gateway: 'gw1', status: 'ok', durationMs: 1 }], plainColours)).not.toContain('retr');
  });
});
