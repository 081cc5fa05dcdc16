import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appendKnownHost,
  fingerprintSha256,
  knownHostsName,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/ssh/known-hosts.js';
import { hostKeyAlgorithmsFor } from '../../src/ssh/algorithms.js';
import { makeHostKey, tempDir } from './harness.js';

const ed = makeHostKey('ed25519');
const ec = makeHostKey('ecdsa');
const other = makeHostKey('ed25519');
const dir = tempDir();
afterAll(() => dir.remove());

/** Hashes host names with the real ssh-keygen, so our HMAC check is tested against OpenSSH's. */
function hashedLine(name: string, key: { publicLine: string }): string {
  const file = join(dir.path, `hash-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `${name} ${key.publicLine}\n`);
  execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
  return readFileSync(file, 'utf8').trim();
}

describe('known_hosts parsing and lookup', () => {
  const table: Array<{ title: string; text: string; name: string; offered: Buffer; verdict: string; line?: number }> = [
    { title: 'plain host', text: `gw1.example.net ${ed.publicLine}`, name: 'gw1.example.net', offered: ed.blob, verdict: 'match', line: 1 },
    { title: 'host names are case-insensitive', text: `GW1.Example.NET ${ed.publicLine}`, name: 'gw1.example.net', offered: ed.blob, verdict: 'match' },
    { title: 'comma list', text: `gw1,192.0.2.10 ${ed.publicLine}`, name: '192.0.2.10', offered: ed.blob, verdict: 'match' },
    { title: '[host]:port', text: `[192.0.2.10]:2222 ${ed.publicLine}`, name: knownHostsName('192.0.2.10', 2222), offered: ed.blob, verdict: 'match' },
    { title: 'port 22 entry does not cover another port', text: `192.0.2.10 ${ed.publicLine}`, name: knownHostsName('192.0.2.10', 2222), offered: ed.blob, verdict: 'unknown' },
    { title: 'hashed entry', text: hashedLine('gw1.example.net', ed), name: 'gw1.example.net', offered: ed.blob, verdict: 'match' },
    { title: 'hashed [host]:port entry', text: hashedLine('[192.0.2.10]:2222', ed), name: '[192.0.2.10]:2222', offered: ed.blob, verdict: 'match' },
    { title: 'hashed entry of another host', text: hashedLine('gw2.example.net', ed), name: 'gw1.example.net', offered: ed.blob, verdict: 'unknown' },
    { title: '* wildcard', text: `*.example.net ${ed.publicLine}`, name: 'gw7.example.net', offered: ed.blob, verdict: 'match' },
    { title: '? wildcard', text: `gw?.example.net ${ed.publicLine}`, name: 'gw10.example.net', offered: ed.blob, verdict: 'unknown' },
    { title: 'negation vetoes the line', text: `*.example.net,!gw3.example.net ${ed.publicLine}`, name: 'gw3.example.net', offered: ed.blob, verdict: 'unknown' },
    { title: 'negation of another host', text: `*.example.net,!gw3.example.net ${ed.publicLine}`, name: 'gw4.example.net', offered: ed.blob, verdict: 'match' },
    { title: 'dot is literal in patterns', text: `gw1.example.net ${ed.publicLine}`, name: 'gw1xexample.net', offered: ed.blob, verdict: 'unknown' },
    {
      title: 'several key types per host, second type offered',
      text: `# comment\n\ngw1 ${ed.publicLine}\ngw1 ${ec.publicLine} root@gw1`,
      name: 'gw1',
      offered: ec.blob,
      verdict: 'match',
      line: 4,
    },
    { title: 'changed key, same type', text: `gw1 ${ed.publicLine}`, name: 'gw1', offered: other.blob, verdict: 'changed' },
    { title: 'changed key, other type (strict)', text: `gw1 ${ed.publicLine}`, name: 'gw1', offered: ec.blob, verdict: 'changed' },
    { title: 'revoked key', text: `@revoked * ${ed.publicLine}\ngw1 ${ed.publicLine}`, name: 'gw1', offered: ed.blob, verdict: 'revoked', line: 1 },
    { title: 'revoked entry is not a trusted key', text: `@revoked gw1 ${ed.publicLine}`, name: 'gw1', offered: other.blob, verdict: 'unknown' },
    { title: 'empty file', text: '', name: 'gw1', offered: ed.blob, verdict: 'unknown' },
  ];
  it.each(table)('$title -> $verdict', ({ text, name, offered, verdict, line }) => {
    const result = verifyHostKey(parseKnownHosts(text, '/kh'), name, offered);
    expect(result.kind).toBe(verdict);
    if (line !== undefined && 'entry' in result) expect(result.entry.line).toBe(line);
  });

  it('names file:line of every entry of a changed host', () => {
    const text = `other ${other.publicLine}\ngw1 ${ed.publicLine}\ngw1 ${ec.publicLine}`;
    const result = verifyHostKey(parseKnownHosts(text, '/home/a/.ssh/known_hosts'), 'gw1', other.blob);
    expect(result.kind).toBe('changed');
    if (result.kind !== 'changed') return;
    expect(result.entries.map((e) => `${e.file}:${e.line}`)).toEqual(['/home/a/.ssh/known_hosts:2', '/home/a/.ssh/known_hosts:3']);
  });

  it('skips @cert-authority and malformed lines with a warning naming the line', () => {
    const text = [
      `@cert-authority *.example.net ${ed.publicLine}`,
      'gw1 ssh-ed25519',
      `gw1 ssh-rsa ${ed.publicLine.split(' ')[1]}`,
      `|1|notbase64!|x ${ed.publicLine}`,
      `gw2 ${ec.publicLine}`,
    ].join('\n');
    const parsed = parseKnownHosts(text, 'kh');
    expect(parsed.entries.map((e) => e.line)).toEqual([5]);
    expect(parsed.warnings).toHaveLength(4);
    expect(parsed.warnings[0]).toMatch(/^kh:1: @cert-authority entries are not supported/);
    expect(parsed.warnings[2]).toMatch(/^kh:3: key is not a valid ssh-rsa key/);
  });

  it('prefers the key types known for the host when negotiating', () => {
    const parsed = parseKnownHosts(`gw1 ${ec.publicLine}\n[gw1]:2222 ${ed.publicLine}`, 'kh');
    expect(knownKeyTypes(parsed, 'gw1')).toEqual(['ecdsa-sha2-nistp256']);
    expect(hostKeyAlgorithmsFor(knownKeyTypes(parsed, 'gw1'))[0]).toBe('ecdsa-sha2-nistp256');
    expect(hostKeyAlgorithmsFor(['ssh-rsa']).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-ed25519']);
    expect(hostKeyAlgorithmsFor([])[0]).toBe('ssh-ed25519');
  });

  it('computes the fingerprint exactly like ssh-keygen -l', () => {
    const file = join(dir.path, 'fp.pub');
    writeFileSync(file, `${ed.publicLine} x\n`);
    const fromOpenSsh = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' }).split(' ')[1];
    expect(fingerprintSha256(ed.blob)).toBe(fromOpenSsh);
  });

  it('appends an entry that ssh-keygen -F finds, after a last line without newline', async () => {
    const file = join(dir.path, 'sub', 'known_hosts');
    await appendKnownHost(file, '[127.0.0.1]:2200', ed.blob);
    writeFileSync(file, readFileSync(file, 'utf8').trimEnd());
    await appendKnownHost(file, 'gw1', ec.blob);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toEqual([`[127.0.0.1]:2200 ${ed.publicLine}`, `gw1 ${ec.publicLine}`, '']);
    const found = execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2200', '-f', file], { encoding: 'utf8' });
    expect(found).toContain(ed.publicLine);
  });
});
