import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LBPROV_VERSION } from '../../src/cli/version.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('lbprov --version', () => {
  it('is the version package.json declares', () => {
    expect(LBPROV_VERSION).toBe((JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('prints it from the built executable, like commander does for the full CLI', () => {
    const cli = resolve(ROOT, 'dist/lbprov.mjs');
    expect(execFileSync('node', [cli, '--version'], { encoding: 'utf8' })).toBe(`${LBPROV_VERSION}\n`);
    expect(execFileSync('node', [cli, '-V'], { encoding: 'utf8' })).toBe(`${LBPROV_VERSION}\n`);
    // Anything else goes to the full CLI.
    expect(execFileSync('node', [cli, 'help'], { encoding: 'utf8' })).toMatch(/^Usage: lbprov /);
  });
});
