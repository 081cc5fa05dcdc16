/**
 * The files section: stat's modes, sha256sum's hashes and a tar of the files the controller did
 * not know. What the parser trusts of each, on output shaped like the gateway's and forged.
 */
import { describe, expect, it } from 'vitest';
import { parseFiles } from '../../src/facts/core.js';
import { knownFile } from '../../src/model/facts.js';
import { tarOf } from '../helpers/tar.js';

const MONITOR = knownFile('/etc/lbprov/monitor.sh', '#!/bin/sh\necho monitor\n');
const CONF = knownFile('/etc/lbprov/monitor.conf', 'tick="1"\n');

const section = (lines: string[], tar?: { path: string; mode?: number; content: string }[]) =>
  [...lines, ...(tar ? ['@tar', tarOf(tar).toString('base64')] : [])].join('\n');

describe('parseFiles', () => {
  it('a known hash gives the known content with the mode stat printed; unknown files come from the tar', () => {
    const body = section(
      [`@m 755 ${MONITOR.path} regular file`, `@h ${MONITOR.sha256} ${MONITOR.path}`, '@m 600 /etc/lbprov/persist/ip.batch regular file', `@h ${'1'.repeat(64)} /etc/lbprov/persist/ip.batch`],
      [{ path: '/etc/lbprov/persist/ip.batch', mode: 0o600, content: 'rule add priority 100\n' }],
    );
    expect(parseFiles(body, [MONITOR, CONF])).toEqual([
      { kind: 'file', id: 'file:/etc/lbprov/persist/ip.batch', path: '/etc/lbprov/persist/ip.batch', mode: '0600', content: 'rule add priority 100\n' },
      { kind: 'file', id: `file:${MONITOR.path}`, path: MONITOR.path, mode: '0755', content: MONITOR.content },
    ]);
  });

  it('an empty file, a symlink, a folder and a hash for another path', () => {
    const empty = knownFile('/etc/lbprov/hooks/empty', '');
    const body = section([
      `@m 644 ${empty.path} regular empty file`,
      `@h ${empty.sha256} ${empty.path}`,
      `@m 777 ${CONF.path} symbolic link`,
      `@h ${CONF.sha256} ${CONF.path}`,
      '@m 755 /etc/lbprov/persist directory',
      // The monitor's known hash claimed for a file whose content nobody sent: absent, not the monitor.
      '@m 644 /etc/lbprov/restore.sh regular file',
      `@h ${MONITOR.sha256} /etc/lbprov/restore.sh`,
    ]);
    expect(parseFiles(body, [MONITOR, CONF, empty]).map((f) => [f.path, f.mode, f.content])).toEqual([[empty.path, '0644', '']]);
  });

  it('a file lbprov does not own is ignored in every form, and the tar wins over a hash', () => {
    const shadow = knownFile('/etc/shadow', 'root::0:0::::\n');
    const body = section(
      [`@m 644 ${shadow.path} regular file`, `@h ${shadow.sha256} ${shadow.path}`, `@m 755 ${MONITOR.path} regular file`, `@h ${MONITOR.sha256} ${MONITOR.path}`],
      [
        { path: '/etc/shadow', content: 'root::0:0::::\n' },
        { path: MONITOR.path, mode: 0o755, content: '#!/bin/sh\necho changed since it was hashed\n' },
      ],
    );
    expect(parseFiles(body, [MONITOR, shadow]).map((f) => [f.path, f.content])).toEqual([[MONITOR.path, '#!/bin/sh\necho changed since it was hashed\n']]);
  });

  it('malformed mode and hash lines are not files', () => {
    const body = section([`@m 9999 ${MONITOR.path} regular file`, `@h ${MONITOR.sha256} ${MONITOR.path}`, `@m 755 ${CONF.path} regular file`, `@h ${CONF.sha256.toUpperCase()} ${CONF.path}`]);
    expect(parseFiles(body, [MONITOR, CONF])).toEqual([]);
  });
});
