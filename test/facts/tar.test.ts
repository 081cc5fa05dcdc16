import { describe, expect, it, onTestFinished } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTar } from '../../src/facts/tar.js';
import { tarOf } from '../helpers/tar.js';

describe('readTar', () => {
  it('reads what GNU tar writes for the facts script: paths, modes, contents, long names', () => {
    const root = mkdtempSync(join(tmpdir(), 'lbprov-tar-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const long = `etc/lbprov/${'d'.repeat(60)}/${'f'.repeat(60)}.conf`;
    mkdirSync(join(root, 'etc/lbprov', 'd'.repeat(60)), { recursive: true });
    writeFileSync(join(root, 'etc/lbprov/monitor.sh'), '#!/bin/sh\necho "quoted $x"\n');
    chmodSync(join(root, 'etc/lbprov/monitor.sh'), 0o755);
    writeFileSync(join(root, long), 'x = 1\n');
    writeFileSync(join(root, 'etc/lbprov/empty'), '');
    const archive = execFileSync('tar', ['-C', root, '-cf', '-', '--no-recursion', '--ignore-failed-read', '--', 'etc/lbprov/monitor.sh', long, 'etc/lbprov/empty', 'etc/lbprov/missing'], { stdio: ['ignore', 'pipe', 'ignore'] });
    expect(readTar(archive)).toEqual([
      { path: '/etc/lbprov/monitor.sh', mode: 0o755, content: Buffer.from('#!/bin/sh\necho "quoted $x"\n') },
      { path: `/${long}`, mode: 0o644, content: Buffer.from('x = 1\n') },
      { path: '/etc/lbprov/empty', mode: 0o644, content: Buffer.alloc(0) },
    ]);
  });

  it('refuses a truncated stream and garbage headers', () => {
    const archive = tarOf([{ path: '/etc/lbprov/a', content: 'x'.repeat(2000) }]);
    expect(() => readTar(archive.subarray(0, 1000))).toThrow(/truncated/);
    expect(() => readTar(Buffer.alloc(512, 0x41))).toThrow(/bad number/);
  });
});
