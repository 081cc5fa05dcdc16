import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { defaultForks, parseForks } from '../../src/runner/forks.js';

describe('--forks', () => {
  it('defaults to 32 per core, at least 16 and at most 256', () => {
    expect(defaultForks(1)).toBe(32);
    expect(defaultForks(2)).toBe(64);
    expect(defaultForks(64)).toBe(256);
    expect(parseForks(undefined)).toBe(defaultForks());
    expect(parseForks('auto')).toBe(defaultForks());
  });

  it('takes a whole number and refuses anything else with a clear error', () => {
    expect(parseForks('7')).toBe(7);
    for (const bad of ['0', '-3', '2.5', '1e3', 'lots', '', '1001']) {
      expect(() => parseForks(bad)).toThrow(InputError);
    }
    expect(() => parseForks('lots')).toThrow(/--forks: must be a whole number from 1 to 1000, or auto; got "lots"/);
  });
});
