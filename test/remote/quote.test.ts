import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../src/remote/quote.js';

/** What a real POSIX shell makes of the quoted words. */
function throughShell(words: string[]): string[] {
  const script = `printf '%s\\0' ${words.map(shellQuote).join(' ')}`;
  const output = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
  return output.split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  it.each([
    ['', "''"],
    ['eth0', 'eth0'],
    ["it's", `'it'\\''s'`],
    ['a b', "'a b'"],
    ['$(reboot)', "'$(reboot)'"],
  ])('quotes %j as %s', (input, quoted) => {
    expect(shellQuote(input)).toBe(quoted);
  });

  it('survives a real shell for hostile words', () => {
    const words = ['', "'", "''", 'a\nb', '`id`', '$(touch /tmp/pwned)', '; rm -rf /', '"\\"', '*', '~root', '-n', 'a\tb\r', '\\', '!$#&|<>'];
    expect(throughShell(words)).toEqual(words);
  });

  it('round-trips any string without NUL (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }).filter((s) => !s.includes('\0')), { minLength: 1, maxLength: 20 }), (words) => {
        expect(throughShell(words)).toEqual(words);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses NUL, which no shell word can hold', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});
