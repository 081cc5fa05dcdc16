/**
 * Hostile and broken input through the real CLI (`node dist/lbprov.mjs plan`): every row must exit 1
 * with file:line: key on stderr, send no command (LBPROV_TRACE stays empty) and open no TCP
 * connection (the inventory points at a local listener that counts what it accepts).
 * Needs the build (`npm test` runs tsc first).
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mutate } from '../inventory/fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SHIPPED_PLAYBOOK = readFileSync(join(ROOT, 'playbooks/balancer.yml'), 'utf8').split('\n');

/** Line (in the copy with its `templates:` line added after the name) and entry index of `text` in the shipped playbook. */
function shippedAt(text: string, key: string): { file: 'playbook'; line: number; key: string } {
  const index = SHIPPED_PLAYBOOK.findIndex((l) => l.includes(text));
  const entry = SHIPPED_PLAYBOOK.slice(0, index + 1).filter((l) => l.startsWith('  - type:')).length - 1;
  return { file: 'playbook', line: index + 2, key: `resources[${entry}].${key}` };
}
const CLI = join(ROOT, 'dist/lbprov.mjs');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: Record<string, string>, cwd: string): Promise<CliResult> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', SSH_AUTH_SOCK: '', ...env }, timeout: 60_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end();
  });
}

/** Base inventory: one valid gateway at the counting listener. Line numbers are used by the rows. */
function baseInventory(port: number, knownHosts: string): string {
  return `ssh:
  user: root
  port: ${port}
  known_hosts: ${knownHosts}
  connect_timeout: 1
gateways:
  gw-a1:
    host: 127.0.0.1
    lan:
      interfaces: [eth0]
    links:
      - name: isp1
        interface: eth1
        gateway: 198.51.100.1
        weight: 3
        probes: [198.51.100.1]
      - name: isp2
        interface: eth2
        gateway: 203.0.113.1
        weight: 1
        probes: [203.0.113.1]
groups:
  paris: [gw-a1]
`;
}

const G = 'gateways.gw-a1';
const q = (value: string) => JSON.stringify(value);

interface Row {
  name: string;
  /** Inventory text (or bytes) from the base; playbook rows keep the base inventory. */
  inventory?: (base: string) => string | Buffer;
  /** Playbook text from the shipped one, with `templates:` already pointing somewhere. */
  playbook?: (shipped: string) => string;
  /** Edits a copy of the shipped templates (file name -> new text). */
  templates?: Record<string, (text: string) => string>;
  /** Where the error must point: file (inventory|playbook|template:<name>), line (0: where the key is in the template) and key. */
  at: { file: 'inventory' | 'playbook' | `template:${string}`; line: number; key: string };
}

const injections: [string, string][] = [
  ['semicolon', ';reboot'],
  ['command substitution', '$(reboot)'],
  ['backticks', '`reboot`'],
  ['newline', '\n-A PREROUTING -j ACCEPT'],
  ['single quote', "'"],
  ['space', ' x'],
  ['over-long', 'x'.repeat(300)],
];

const injectionFields: { field: string; from: string; to: (v: string) => string; key: string; line: number; base: string }[] = [
  { field: 'link interface', from: 'interface: eth1', to: (v) => `interface: ${q(v)}`, key: `${G}.links[0].interface`, line: 13, base: 'eth1' },
  { field: 'LAN interface', from: 'interfaces: [eth0]', to: (v) => `interfaces: [${q(v)}]`, key: `${G}.lan.interfaces[0]`, line: 10, base: 'eth0' },
  { field: 'link name', from: 'name: isp2', to: (v) => `name: ${q(v)}`, key: `${G}.links[1].name`, line: 17, base: 'isp2' },
  { field: 'host', from: 'host: 127.0.0.1', to: (v) => `host: ${q(v)}`, key: `${G}.host`, line: 8, base: '127.0.0.1' },
  { field: 'probe', from: 'probes: [203.0.113.1]', to: (v) => `probes: [${q(v)}]`, key: `${G}.links[1].probes[0]`, line: 21, base: '203.0.113.1' },
  { field: 'next hop', from: 'gateway: 198.51.100.1', to: (v) => `gateway: ${q(v)}`, key: `${G}.links[0].gateway`, line: 14, base: '198.51.100.1' },
];

const link = (i: number) => `      - { name: l${i}, interface: wan${i}, gateway: 198.51.100.${i + 1}, weight: 1 }`;
const withLinks = (base: string, count: number) =>
  base.replace(/ {4}links:\n[\s\S]*?(?=groups:)/, `    links:\n${Array.from({ length: count }, (_, i) => link(i)).join('\n')}\n`);

const BOMB = `bomb:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
`;

const rows: Row[] = [
  ...injectionFields.flatMap(({ field, from, to, key, line, base }) =>
    injections.map(([variant, suffix]): Row => ({
      name: `${field}: ${variant}`,
      inventory: (inv) => mutate(inv, from, to(base + suffix)),
      at: { file: 'inventory', line, key },
    })),
  ),
  { name: 'known_hosts path with a space', inventory: (inv) => inv.replace(/known_hosts: .*/, 'known_hosts: "/tmp/a b"'), at: { file: 'inventory', line: 4, key: 'ssh.known_hosts' } },
  { name: 'identity file with command substitution', inventory: (inv) => inv.replace(/known_hosts: .*/, 'identity_file: "~/$(reboot)"'), at: { file: 'inventory', line: 4, key: 'ssh.identity_file' } },
  { name: 'proxy jump smuggling an ssh option', inventory: (inv) => mutate(inv, 'connect_timeout: 1', 'proxy_jump: "-oProxyCommand=touch /tmp/pwned"'), at: { file: 'inventory', line: 5, key: 'ssh.proxy_jump' } },
  { name: 'gateway name with a semicolon', inventory: (inv) => mutate(inv, '  gw-a1:', '  "gw;a1":'), at: { file: 'inventory', line: 7, key: 'gateways["gw;a1"]' } },
  ...['0', '-1', '1e9', '2.5', '"3"'].map((w): Row => ({ name: `weight ${w}`, inventory: (inv) => mutate(inv, 'weight: 3', `weight: ${w}`), at: { file: 'inventory', line: 15, key: `${G}.links[0].weight` } })),
  { name: 'duplicate link name', inventory: (inv) => mutate(inv, 'name: isp2', 'name: isp1'), at: { file: 'inventory', line: 17, key: `${G}.links[1].name` } },
  { name: 'duplicate link interface', inventory: (inv) => mutate(inv, 'interface: eth2', 'interface: eth1'), at: { file: 'inventory', line: 18, key: `${G}.links[1].interface` } },
  { name: 'mark mask too small for distinct link marks', inventory: (inv) => mutate(inv, '    lan:', '    mark_mask: "0x100"\n    lan:'), at: { file: 'inventory', line: 9, key: `${G}.mark_mask` } },
  { name: 'one link', inventory: (inv) => withLinks(inv, 1), at: { file: 'inventory', line: 11, key: `${G}.links` } },
  { name: '65 links', inventory: (inv) => withLinks(inv, 65), at: { file: 'inventory', line: 11, key: `${G}.links` } },
  { name: 'YAML alias bomb', inventory: (inv) => BOMB + inv, at: { file: 'inventory', line: 3, key: 'bomb.b[0]' } },
  {
    name: 'non-UTF-8 bytes',
    inventory: (inv) => {
      const [head, tail] = inv.split('host: 127.0.0.1');
      return Buffer.concat([Buffer.from(`${head}host: 127.0.0.1`), Buffer.from([0xc3, 0x28]), Buffer.from(tail!)]);
    },
    at: { file: 'inventory', line: 8, key: '(document)' },
  },
  { name: '50 MB inventory', inventory: (inv) => inv + `# ${'x'.repeat(50 * 1024 * 1024)}\n`, at: { file: 'inventory', line: 1, key: '(document)' } },
  { name: 'playbook file outside lbprov\'s paths', playbook: (pb) => mutate(pb, 'path: /etc/iproute2/rt_tables.d/lbprov.conf', 'path: /etc/passwd'), at: shippedAt('path: /etc/iproute2/rt_tables.d/lbprov.conf', 'path') },
  { name: 'playbook path climbing out with ..', playbook: (pb) => mutate(pb, 'path: /etc/iproute2/rt_tables.d/lbprov.conf', 'path: /etc/lbprov/../shadow'), at: shippedAt('path: /etc/iproute2/rt_tables.d/lbprov.conf', 'path') },
  { name: 'playbook template outside the templates folder', playbook: (pb) => mutate(pb, 'template: routes.hbs', 'template: ../../etc/passwd.hbs'), at: shippedAt('template: routes.hbs', 'template') },
  { name: 'playbook service name with a shell word', playbook: (pb) => mutate(pb, 'name: monitor', 'name: "monitor;reboot"'), at: shippedAt('name: monitor', 'name') },
  {
    name: 'template referencing a missing variable',
    templates: { 'iptables/mangle.rules.hbs': (text) => text.replace('{{markMask}}', '{{markMaskTypo}}') },
    at: { file: 'template:iptables/mangle.rules.hbs', line: 0, key: 'markMaskTypo' },
  },
];

describe('hostile input through the CLI: exit 1, file:line: key, no command, no connection', () => {
  let dir: string;
  let listener: net.Server;
  let accepted = 0;
  const BASE_ATTEMPTS = 3;
  let port = 0;
  let base = '';
  let shippedPlaybook = '';
  let n = 0;

  beforeAll(async () => {
    expect(existsSync(CLI), 'build first: npm run build').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'lbprov-hostile-cli-'));
    listener = net.createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((done) => listener.listen(0, '127.0.0.1', done));
    port = (listener.address() as net.AddressInfo).port;
    base = baseInventory(port, join(dir, 'known_hosts'));
    // The shipped playbook, its templates named by absolute path so rows can live in the temp dir.
    shippedPlaybook = readFileSync(join(ROOT, 'playbooks/balancer.yml'), 'utf8').replace(/^name: balancer$/m, `name: balancer\ntemplates: ${join(ROOT, 'templates')}`);
  });

  afterAll(async () => {
    await new Promise((done) => listener.close(done));
    rmSync(dir, { recursive: true, force: true });
  });

  it('the valid base does connect: the listener counts connection attempts', async () => {
    const inventory = join(dir, 'valid.yml');
    writeFileSync(inventory, base);
    const result = await runCli(['plan', '-i', inventory], {}, dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('gw-a1');
    // The listener drops each connection before the SSH banner, as an sshd past its MaxStartups
    // does: lbprov tries ssh.connection_attempts times (3 by default).
    expect(accepted).toBe(BASE_ATTEMPTS);
    expect(result.stdout).toContain('(after 3 attempts)');
  });

  // Rows run a few at a time; any connection at all fails the count check after them.
  describe.concurrent('rows', () => {
    it.each(rows)('$name', async (row) => {
      const id = ++n;
      const inventory = join(dir, `inventory-${id}.yml`);
      writeFileSync(inventory, row.inventory ? row.inventory(base) : base);
      const args = ['plan', '-i', inventory];
      let expectedFile = inventory;
      let expectedLine = row.at.line;
      let playbookText = shippedPlaybook;
      if (row.templates) {
        const templates = join(dir, `templates-${id}`);
        cpSync(join(ROOT, 'templates'), templates, { recursive: true });
        for (const [name, edit] of Object.entries(row.templates)) {
          writeFileSync(join(templates, name), edit(readFileSync(join(templates, name), 'utf8')));
        }
        playbookText = playbookText.replace(/^templates: .*$/m, `templates: ${templates}`);
        expectedFile = join(templates, row.at.file.slice('template:'.length));
        expectedLine = readFileSync(expectedFile, 'utf8').split('\n').findIndex((l) => l.includes(row.at.key)) + 1;
      }
      if (row.playbook || row.templates) {
        const playbook = join(dir, `playbook-${id}.yml`);
        writeFileSync(playbook, row.playbook ? row.playbook(playbookText) : playbookText);
        args.push('-p', playbook);
        if (row.at.file === 'playbook') expectedFile = playbook;
      }
      const trace = join(dir, `trace-${id}.jsonl`);
      const result = await runCli(args, { LBPROV_TRACE: trace }, dir);

      expect(result.code, result.stdout + result.stderr).toBe(1);
      const location = new RegExp(`${escape(expectedFile)}:${expectedLine}: ${escape(row.at.key)}: `);
      expect(result.stderr).toMatch(location);
      expect(existsSync(trace) ? readFileSync(trace, 'utf8') : '').toBe('');
      // Hostile text is shown escaped, never as a raw line break that forges a line of output.
      expect(result.stderr.split('\n').filter((l) => l.startsWith('-A PREROUTING'))).toEqual([]);
    });
  });

  it('no row opened a connection', () => {
    expect(accepted).toBe(BASE_ATTEMPTS);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
