/**
 * The facts script run by a real sh, with stub iptables-save and ip first on its PATH (the
 * prelude sets it): each section's stderr reaches the facts as a warning of that section, both
 * when sections write to the script's stderr stream and when they collect it in a file.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFactsScript } from '../../src/facts/script.js';
import { parseFacts } from '../../src/facts/parse.js';
import { scriptStderr } from '../../src/remote/sections.js';
import type { FactsRequest } from '../../src/model/facts.js';
import { RemoteError } from '../../src/errors.js';

const work = mkdtempSync(join(tmpdir(), 'lbprov-gather-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const request: FactsRequest = { sysctlKeys: [], filePaths: [], services: [], ranges: { priorityFirst: 100, priorityLast: 199, tables: new Set([101]) }, firewall: 'iptables', firewallCandidates: ['iptables'] };
const LINK = JSON.stringify([{ ifname: 'wan1', flags: ['UP', 'LOWER_UP'] }]);
const ADDR = JSON.stringify([{ ifname: 'wan1', flags: ['UP', 'LOWER_UP'], addr_info: [{ family: 'inet', local: '203.0.113.2', prefixlen: 26 }] }]);

/** A folder of stub tools: iptables-save warns on stderr; ip prints `ipLines` JSON lines. */
function stubs(name: string, ipLines: string[]): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const tool = (file: string, body: string) => {
    writeFileSync(join(dir, file), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, file), 0o755);
  };
  tool('iptables-save', "printf '*mangle\\n:PREROUTING ACCEPT [0:0]\\nCOMMIT\\n'; echo 'iptables-save: table nat is incompatible, use nft' >&2");
  tool('ip', `cat >/dev/null; printf '%s\\n' ${ipLines.map((l) => `'${l}'`).join(' ')}`);
  return dir;
}

function run(stubDir: string, errorFile?: string) {
  const { script, marker } = buildFactsScript(request, { prelude: `PATH=${stubDir}:$PATH`, errorFile });
  const result = spawnSync('sh', ['-s'], { input: script, encoding: 'utf8' });
  return { ...result, marker };
}

describe('facts script sections and their stderr', () => {
  it('a section writing to stderr becomes a warning of that section; the stream carries only marker lines besides', () => {
    const r = run(stubs('ok', ['[]', '[]', LINK, ADDR, '[]']));
    expect(r.status).toBe(0);
    const facts = parseFacts('gw1', r.stdout, r.marker, request, { stderr: r.stderr });
    expect(facts.warnings).toContain('iptables-save: iptables-save: table nat is incompatible, use nft');
    expect(facts.interfaces).toEqual([{ name: 'wan1', up: true, ipv4: ['203.0.113.2/26'] }]);
    expect(r.stderr).toMatch(new RegExp(`^@@${r.marker} begin iptables$`, 'm'));
    expect(scriptStderr(r.stderr, r.marker)).toBe('iptables-save: table nat is incompatible, use nft');
  });

  it('collects the same stderr into the output when the caller gives a file (the apply read-back)', () => {
    const r = run(stubs('file', ['[]', '[]', LINK, ADDR, '[]']), `'${join(work, 'facts.err')}'`);
    expect(r.stderr).toBe('');
    const facts = parseFacts('gw1', r.stdout, r.marker, request);
    expect(facts.warnings).toContain('iptables-save: iptables-save: table nat is incompatible, use nft');
  });

  it('ip output with fewer documents than commands is refused as facts', () => {
    const r = run(stubs('short', ['[]', '[]', LINK]));
    expect(() => parseFacts('gw1', r.stdout, r.marker, request, { stderr: r.stderr })).toThrow(RemoteError);
    expect(() => parseFacts('gw1', r.stdout, r.marker, request, { stderr: r.stderr })).toThrow(/expected 5 JSON documents/);
  });
});
