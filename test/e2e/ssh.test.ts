/**
 * Issue 6 end to end: SSH the way admins use it, against the lab's real OpenSSH sshd. Real
 * known_hosts files (plain, hashed, [host]:port), a real ssh-agent, an encrypted key, a jump host
 * namespace, ~/.ssh/config aliases, non-root sudo users, and a fleet of broken gateways in one run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { LabGateway } from '../../src/lab/index.js';
import { LabLocks, releaseLocks } from '../../src/lab/allocator.js';
import { managementPair, type ManagementPair } from '../../src/lab/addressing.js';
import { run } from '../../src/lab/run.js';
import { openSession } from '../../src/ssh/session.js';
import { resolveSshSettings } from '../../src/ssh/ssh-config.js';
import { skipLab, startLab, type LabRun, type RunResult } from './harness.js';

const SSHD = '/usr/sbin/sshd';
const PASSPHRASE = 'correct horse battery staple 6e1f';

/** One inventory gateway entry for a lab gateway, plus overrides (host, ssh, ...). */
function gatewayEntry(g: LabGateway, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    host: g.mgmtAddress,
    lan: { interfaces: [g.lanInterface] },
    links: g.links.map((l) => ({ name: l.name, interface: l.interface, gateway: l.nextHop, weight: l.weight, probes: [l.probe] })),
    ...extra,
  };
}

function publicKeyOf(privateKeyFile: string): string {
  return readFileSync(`${privateKeyFile}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

async function fingerprintOf(privateKeyFile: string): Promise<string> {
  const { stdout } = await run(['ssh-keygen', '-l', '-E', 'sha256', '-f', `${privateKeyFile}.pub`]);
  const fingerprint = /SHA256:\S+/.exec(stdout)?.[0];
  if (!fingerprint) throw new Error(`no fingerprint in ${stdout}`);
  return fingerprint;
}

/** An sshd we start ourselves (bastion, second port); stopped by its pid. */
async function startSshd(argvPrefix: string[], config: string, pidFile: string, log: string): Promise<ChildProcess> {
  const fd = openSync(log, 'a');
  const child = spawn(argvPrefix[0]!, [...argvPrefix.slice(1), SSHD, '-D', '-e', '-f', config], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  for (let i = 0; i < 300 && !existsSync(pidFile); i++) {
    if (child.exitCode !== null) break;
    await sleep(20);
  }
  if (!existsSync(pidFile)) throw new Error(`sshd did not start: ${readFileSync(log, 'utf8')}`);
  return child;
}

function sshdConfig(lines: Record<string, string>, authorizedKeys: string): string {
  return (
    Object.entries(lines).map(([k, v]) => `${k} ${v}`).join('\n') +
    `\nAuthorizedKeysFile ${authorizedKeys}\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n`
  );
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  await Promise.race([exited, sleep(3000)]);
}

/** Everything a run printed or wrote, to look for secrets in. */
function everything(result: RunResult, ...files: string[]): string {
  return [result.stdout, result.stderr, ...files.filter(existsSync).map((f) => readFileSync(f, 'utf8'))].join('\n');
}

describe.skipIf(skipLab)('ssh: known_hosts, agent, keys, jump hosts, ssh config, sudo, broken gateways', () => {
  let t: LabRun;
  let gw0: LabGateway;
  let gw1: LabGateway;
  let labKey: string;
  let authorizedKeys: string;
  const children: ChildProcess[] = [];
  // The jump host: its own namespace, reachable from the root namespace (a), with a link into gw0 (b).
  let bastionNs: string | undefined;
  let bastionLocks: string[] = [];
  let bastionOwner = '';
  let a: ManagementPair;
  let b: ManagementPair;
  /** An address routed into the bastion, which does not forward: SYNs vanish, as to a host that is down. */
  let blackHole: string;
  let bastionKey: string;
  let n = 0;

  const file = (name: string) => join(t.work, name);
  const writeInventory = (gateways: Record<string, Record<string, unknown>>, ssh: Record<string, unknown> = {}): string => {
    const path = file(`inventory-${++n}.yml`);
    writeFileSync(path, stringify({ ssh: { user: 'root', port: 22, known_hosts: t.lab.state.ssh.knownHosts, identity_file: labKey, ...ssh }, gateways }));
    return path;
  };
  /** No agent unless a test passes one: the developer's own agent must not make a test pass. */
  const cli = (args: string[], env: Record<string, string> = {}) => t.cli(args, { SSH_AUTH_SOCK: '', LBPROV_SSH_PASSPHRASE: '', ...env });
  const sshdLog = (g: LabGateway) => readFileSync(join(g.dir, 'sshd.log'), 'utf8');

  beforeAll(async () => {
    t = await startLab({ gateways: 2, weights: [3, 1] });
    [gw0, gw1] = [t.lab.gateway(0), t.lab.gateway(1)];
    labKey = t.lab.state.ssh.identityFile;
    authorizedKeys = join(t.lab.dir, 'authorized_keys');
    // sshd reads AuthorizedKeysFile as the logging-in user: let the non-root test users through the temp dir.
    chmodSync(t.work, 0o711);
    delete process.env['LBPROV_SSH_PASSPHRASE'];

    // Addresses for the bastion come from the lab allocator, so no other lab can hold them.
    bastionOwner = file('bastion-owner.json');
    writeFileSync(bastionOwner, '{}');
    const prefix = `${t.lab.state.prefix}j`;
    const slots = new LabLocks().acquireSlots(3, { prefix, stateFile: bastionOwner, createdAt: Date.now() });
    bastionLocks = slots.map((s) => s.path);
    [a, b] = [managementPair(slots[0]!.slot), managementPair(slots[1]!.slot)];
    blackHole = managementPair(slots[2]!.slot).gateway;
    bastionNs = `${prefix}-bastion`;
    const ns = bastionNs;
    const [a0, a1, b0, b1] = [`${prefix}a0`, `${prefix}a1`, `${prefix}b0`, `${prefix}b1`];
    for (const argv of [
      ['ip', 'netns', 'add', ns],
      ['ip', 'link', 'add', a0, 'type', 'veth', 'peer', 'name', a1],
      ['ip', 'link', 'set', a1, 'netns', ns],
      ['ip', 'addr', 'add', `${a.root}/31`, 'dev', a0],
      ['ip', 'link', 'set', a0, 'up'],
      ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', ns, 'addr', 'add', `${a.gateway}/31`, 'dev', a1],
      ['ip', '-n', ns, 'link', 'set', a1, 'up'],
      ['ip', 'link', 'add', b0, 'type', 'veth', 'peer', 'name', b1],
      ['ip', 'link', 'set', b0, 'netns', ns],
      ['ip', 'link', 'set', b1, 'netns', gw0.ns],
      ['ip', '-n', ns, 'addr', 'add', `${b.root}/31`, 'dev', b0],
      ['ip', '-n', ns, 'link', 'set', b0, 'up'],
      ['ip', '-n', gw0.ns, 'addr', 'add', `${b.gateway}/31`, 'dev', b1],
      ['ip', '-n', gw0.ns, 'link', 'set', b1, 'up'],
      // The bastion reaches gw0's management address over its own link, not through the root namespace.
      ['ip', '-n', ns, 'route', 'add', `${gw0.mgmtAddress}/32`, 'via', b.gateway],
      ['ip', 'route', 'add', `${blackHole}/32`, 'via', a.gateway],
    ]) {
      await run(argv);
    }
    bastionKey = file('bastion_host_key');
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', bastionKey]);
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const config = file('bastion_sshd_config');
    writeFileSync(config, sshdConfig({ ListenAddress: a.gateway, Port: '22', HostKey: bastionKey, PidFile: file('bastion.pid') }, authorizedKeys));
    children.push(await startSshd(['ip', 'netns', 'exec', ns], config, file('bastion.pid'), file('bastion-sshd.log')));
    writeFileSync(t.lab.state.ssh.knownHosts, `${readFileSync(t.lab.state.ssh.knownHosts, 'utf8')}${a.gateway} ${publicKeyOf(bastionKey)}\n`);
  });

  afterAll(async () => {
    for (const child of children) await stop(child);
    if (bastionNs) await run(['ip', 'netns', 'del', bastionNs], { allowFailure: true });
    releaseLocks(bastionLocks, bastionOwner);
    await t?.destroy();
  });

  describe('host keys', () => {
    it('accepts the key through a plain known_hosts entry and through a hashed one (ssh-keygen -H)', async () => {
      const inventory = writeInventory({ gw1: gatewayEntry(gw0) });
      expect((await cli(['plan', '-i', inventory])).code).toBe(2);
      const hashed = file('known_hosts.hashed');
      copyFileSync(t.lab.state.ssh.knownHosts, hashed);
      await run(['ssh-keygen', '-H', '-f', hashed]);
      const text = readFileSync(hashed, 'utf8');
      expect(text).not.toContain(gw0.mgmtAddress);
      expect(text).toMatch(/^\|1\|/m);
      const result = await cli(['plan', '-i', writeInventory({ gw1: gatewayEntry(gw0) }, { known_hosts: hashed })]);
      expect(result.code, result.stdout + result.stderr).toBe(2);
    });

    it('looks a non-22 port up as [host]:port, plain or hashed, and never under the bare host name', async () => {
      const config = join(gw0.dir, 'sshd_config_2222');
      const pidFile = join(gw0.dir, 'sshd-2222.pid');
      writeFileSync(config, readFileSync(gw0.sshdConfig, 'utf8').replace(/^Port .*$/m, 'Port 2222').replace(/^PidFile .*$/m, `PidFile ${pidFile}`));
      const sshdPid = t.lab.state.processes.find((p) => p.role === `sshd ${gw0.name}`)!.pid;
      children.push(await startSshd(['nsenter', `--target=${sshdPid}`, '--mount', '--net', '--'], config, pidFile, file('sshd-2222.log')));
      const hostKey = publicKeyOf(gw0.hostKeyFile);

      // The lab's known_hosts names the host on port 22 only: port 2222 is an unknown host.
      const bare = await cli(['plan', '-i', writeInventory({ gw1: gatewayEntry(gw0, { ssh: { port: 2222 } }) })]);
      expect(bare.code).toBe(1);
      expect(bare.stdout + bare.stderr).toContain(`host [${gw0.mgmtAddress}]:2222 is not in`);

      const bracketed = file('known_hosts.port');
      writeFileSync(bracketed, `[${gw0.mgmtAddress}]:2222 ${hostKey}\n`);
      const plain = await cli(['plan', '-i', writeInventory({ gw1: gatewayEntry(gw0, { ssh: { port: 2222 } }) }, { known_hosts: bracketed })]);
      expect(plain.code, plain.stdout + plain.stderr).toBe(2);
      await run(['ssh-keygen', '-H', '-f', bracketed]);
      expect(readFileSync(bracketed, 'utf8')).not.toContain(gw0.mgmtAddress);
      const hashed = await cli(['plan', '-i', writeInventory({ gw1: gatewayEntry(gw0, { ssh: { port: 2222 } }) }, { known_hosts: bracketed })]);
      expect(hashed.code, hashed.stdout + hashed.stderr).toBe(2);
    });

    it('refuses an unknown host showing its SHA256 fingerprint; --accept-new records it and the next run trusts it', async () => {
      const knownHosts = file('known_hosts.empty');
      writeFileSync(knownHosts, '');
      const inventory = writeInventory({ gw1: gatewayEntry(gw0) }, { known_hosts: knownHosts });
      const refused = await cli(['plan', '-i', inventory]);
      expect(refused.code).toBe(1);
      expect(refused.stdout + refused.stderr).toContain(await fingerprintOf(gw0.hostKeyFile));
      expect(refused.stdout + refused.stderr).toMatch(/--accept-new/);
      expect(readFileSync(knownHosts, 'utf8')).toBe('');

      const accepted = await cli(['plan', '-i', inventory, '--accept-new']);
      expect(accepted.code, accepted.stdout + accepted.stderr).toBe(2);
      expect(readFileSync(knownHosts, 'utf8')).toBe(`${gw0.mgmtAddress} ${publicKeyOf(gw0.hostKeyFile)}\n`);
      // OpenSSH's own client agrees with what was recorded.
      const lookup = await run(['ssh-keygen', '-F', gw0.mgmtAddress, '-f', knownHosts]);
      expect(lookup.stdout).toContain(publicKeyOf(gw0.hostKeyFile));
      expect((await cli(['plan', '-i', inventory])).code).toBe(2);
    });

    it('refuses a changed key loudly, naming the known_hosts line, even with --accept-new, and leaves the file alone', async () => {
      const impostor = file('impostor_key');
      await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', impostor]);
      const knownHosts = file('known_hosts.changed');
      const text = `# recorded last year\n${gw0.mgmtAddress} ${publicKeyOf(impostor)}\n`;
      writeFileSync(knownHosts, text);
      const inventory = writeInventory({ gw1: gatewayEntry(gw0) }, { known_hosts: knownHosts });
      for (const extra of [[], ['--accept-new']]) {
        const result = await cli(['plan', '-i', inventory, ...extra]);
        expect(result.code).toBe(1);
        expect(result.stdout + result.stderr).toContain('REMOTE HOST KEY CHANGED');
        expect(result.stdout + result.stderr).toContain(`${knownHosts}:2`);
        expect(result.stdout + result.stderr).toContain(await fingerprintOf(gw0.hostKeyFile));
        expect(readFileSync(knownHosts, 'utf8')).toBe(text);
      }
    });
  });

  describe('authentication', () => {
    it('logs in with a key held by a real ssh-agent when the inventory names no identity file', async () => {
      const agent = await run(['ssh-agent', '-s']);
      const socket = /SSH_AUTH_SOCK=([^;]+);/.exec(agent.stdout)?.[1];
      const pid = Number(/SSH_AGENT_PID=(\d+);/.exec(agent.stdout)?.[1]);
      expect(socket).toBeDefined();
      try {
        const inventory = writeInventory({ gw1: gatewayEntry(gw0) }, { identity_file: null });
        const without = await cli(['plan', '-i', inventory]);
        expect(without.code).toBe(1);
        expect(without.stdout + without.stderr).toMatch(/authentication as root .* failed: no ssh-agent and no usable identity file/);
        const empty = await cli(['plan', '-i', inventory], { SSH_AUTH_SOCK: socket! });
        expect(empty.code).toBe(1);
        expect(empty.stdout + empty.stderr).toMatch(/tried ssh-agent/);
        // ssh-add reads SSH_AUTH_SOCK from its environment.
        await new Promise<void>((resolve, reject) => {
          const child = spawn('ssh-add', ['-q', labKey], { env: { ...process.env, SSH_AUTH_SOCK: socket! }, stdio: 'ignore' });
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ssh-add exited ${code}`))));
        });
        const result = await cli(['plan', '-i', inventory], { SSH_AUTH_SOCK: socket! });
        expect(result.code, result.stdout + result.stderr).toBe(2);
      } finally {
        if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGTERM');
      }
    });

    it('decrypts an encrypted identity file with LBPROV_SSH_PASSPHRASE and never shows the passphrase or the key', async () => {
      const key = file('id_encrypted');
      copyFileSync(labKey, key);
      copyFileSync(`${labKey}.pub`, `${key}.pub`);
      await run(['ssh-keygen', '-q', '-p', '-P', '', '-N', PASSPHRASE, '-f', key]);
      const inventory = writeInventory({ gw1: gatewayEntry(gw0) }, { identity_file: key });
      const trace = file('trace-secret.jsonl');
      const out = file('plan-secret.json');
      const secrets = [
        PASSPHRASE,
        ...readFileSync(key, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')),
        ...readFileSync(labKey, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')),
      ];

      const missing = await cli(['plan', '-i', inventory]);
      expect(missing.code).toBe(1);
      expect(missing.stdout + missing.stderr).toMatch(/encrypted and no passphrase is available: set LBPROV_SSH_PASSPHRASE/);

      const wrong = await cli(['plan', '-i', inventory, '--json'], { LBPROV_SSH_PASSPHRASE: `${PASSPHRASE}-wrong` });
      expect(wrong.code).toBe(1);
      expect(wrong.stdout + wrong.stderr).toContain('cannot be decrypted with the passphrase from LBPROV_SSH_PASSPHRASE');
      expect(everything(wrong)).not.toContain(PASSPHRASE);

      const ok = await cli(['plan', '-i', inventory, '--out', out], { LBPROV_SSH_PASSPHRASE: PASSPHRASE, LBPROV_TRACE: trace });
      expect(ok.code, ok.stdout + ok.stderr).toBe(2);
      const json = await cli(['plan', '-i', inventory, '--json'], { LBPROV_SSH_PASSPHRASE: PASSPHRASE, LBPROV_TRACE: trace });
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stdout).hosts[0].changes.length).toBeGreaterThan(0);
      expect(readFileSync(trace, 'utf8').trim().split('\n')).toHaveLength(2);
      const seen = everything(ok, trace, out) + everything(json);
      for (const secret of secrets) expect(seen).not.toContain(secret);
    });
  });

  describe('jump hosts and ssh config', () => {
    const logins = (g: LabGateway, from: string) => sshdLog(g).split('\n').filter((l) => l.includes(`Accepted publickey for root from ${from} `)).length;

    it('reaches the gateway through the bastion namespace with proxy_jump, checking both host keys', async () => {
      const before = logins(gw0, b.root);
      const inventory = writeInventory({ gw1: gatewayEntry(gw0, { ssh: { proxy_jump: `root@${a.gateway}:22` } }) });
      const result = await cli(['plan', '-i', inventory]);
      expect(result.code, result.stdout + result.stderr).toBe(2);
      // The gateway saw the login come from the bastion's side of their private link.
      expect(logins(gw0, b.root)).toBe(before + 1);

      // The bastion's key is checked too: without its known_hosts line the jump is refused.
      const gatewayOnly = file('known_hosts.gateway-only');
      writeFileSync(gatewayOnly, `${gw0.mgmtAddress} ${publicKeyOf(gw0.hostKeyFile)}\n`);
      const refused = await cli(['plan', '-i', writeInventory({ gw1: gatewayEntry(gw0, { ssh: { proxy_jump: `root@${a.gateway}:22` } }) }, { known_hosts: gatewayOnly })]);
      expect(refused.code).toBe(1);
      expect(refused.stdout + refused.stderr).toContain(`jump host ${a.gateway}:22: host ${a.gateway} is not in`);
      expect(refused.stdout + refused.stderr).toContain(await fingerprintOf(bastionKey));
    });

    it('honours an ssh config Host alias (HostName, User, IdentityFile, ProxyJump, ServerAliveInterval), inventory values winning', async () => {
      const config = file('ssh_config');
      writeFileSync(
        config,
        [
          'Host bastion',
          `  HostName ${a.gateway}`,
          '  User root',
          'Host lab-gw',
          `  HostName ${gw0.mgmtAddress}`,
          '  User root',
          `  IdentityFile ${labKey}`,
          '  ProxyJump bastion',
          '  ServerAliveInterval 7',
          `  UserKnownHostsFile ${t.lab.state.ssh.knownHosts}`,
          '',
        ].join('\n'),
      );
      const inventorySsh = { host: 'lab-gw', port: 22, user: 'nobody', knownHosts: '/nonexistent/known_hosts', become: false, connectTimeoutMs: 10_000, commandTimeoutMs: 60_000, keepaliveIntervalMs: 15_000, connectionAttempts: 3 };
      const resolved = await resolveSshSettings('gw1', inventorySsh, new Set(['user']), { configFile: config });
      expect(resolved).toMatchObject({
        host: gw0.mgmtAddress,
        user: 'nobody',
        identityFile: labKey,
        proxyJump: `root@${a.gateway}:22`,
        keepaliveIntervalMs: 7000,
        knownHosts: t.lab.state.ssh.knownHosts,
      });
      const before = logins(gw0, b.root);
      const session = await openSession('gw1', { ...resolved, user: 'root' }, { env: {} });
      try {
        expect((await session.run('id -un')).stdout.trim()).toBe('root');
      } finally {
        await session.close();
      }
      expect(logins(gw0, b.root)).toBe(before + 1);
    });

    it('plan follows an ssh config Host alias (LBPROV_SSH_CONFIG), and an inventory value overrides it', async () => {
      const config = file('ssh_config_cli');
      writeFileSync(
        config,
        [
          'Host bastion',
          `  HostName ${a.gateway}`,
          'Host lab-gw',
          `  HostName ${gw0.mgmtAddress}`,
          '  User root',
          `  IdentityFile ${labKey}`,
          '  ProxyJump root@bastion',
          `  UserKnownHostsFile ${t.lab.state.ssh.knownHosts}`,
          '',
        ].join('\n'),
      );
      const inventoryWith = (ssh: Record<string, unknown>) => {
        const path = file(`inventory-${++n}.yml`);
        writeFileSync(path, stringify({ gateways: { gw1: gatewayEntry(gw0, { host: 'lab-gw', ...(Object.keys(ssh).length ? { ssh } : {}) }) } }));
        return path;
      };
      const viaBastion = logins(gw0, b.root);
      const direct = logins(gw0, gw0.rootAddress);
      const aliased = await cli(['plan', '-i', inventoryWith({})], { LBPROV_SSH_CONFIG: config });
      expect(aliased.code, aliased.stdout + aliased.stderr).toBe(2);
      expect([logins(gw0, b.root), logins(gw0, gw0.rootAddress)]).toEqual([viaBastion + 1, direct]);

      // proxy_jump: null in the inventory beats the config's ProxyJump: the login comes straight from the root namespace.
      const overridden = await cli(['plan', '-i', inventoryWith({ proxy_jump: null })], { LBPROV_SSH_CONFIG: config });
      expect(overridden.code, overridden.stdout + overridden.stderr).toBe(2);
      expect([logins(gw0, b.root), logins(gw0, gw0.rootAddress)]).toEqual([viaBastion + 1, direct + 1]);
    });
  });

  describe('become: a non-root user with sudo', () => {
    beforeAll(async () => {
      for (const user of ['lbadmin', 'lbnopw']) {
        await t.lab.execOnGateway(0, ['useradd', '-M', '-d', '/tmp', '-s', '/bin/sh', user]);
        // '*': no password login, but not locked ('!'), so sshd accepts the key.
        await t.lab.execOnGateway(0, ['usermod', '-p', '*', user]);
      }
      await t.lab.execOnGateway(0, ['sh', '-c', 'umask 0337 && cat > /etc/sudoers.d/lbprov-e2e'], {
        input: 'lbadmin ALL=(root) NOPASSWD: ALL\nlbnopw ALL=(root) ALL\n',
      });
    });

    it('reads facts as root through sudo -n with NOPASSWD', async () => {
      const inventory = writeInventory({ gw1: gatewayEntry(gw0, { ssh: { user: 'lbadmin', become: true } }) });
      const { result, commands } = await t.traced(['plan', '-i', inventory]);
      expect(result.code, result.stdout + result.stderr).toBe(2);
      expect(commands).toHaveLength(1);
      expect(commands[0]!.command).toMatch(/^sudo -n -- sh -c /);
      // Not root without sudo: the same plan without become cannot read iptables.
      const plain = await cli(['plan', '-i', writeInventory({ gw1: gatewayEntry(gw0, { ssh: { user: 'lbadmin' } }) })]);
      expect(plain.code).toBe(1);
      expect(plain.stdout + plain.stderr).toMatch(/iptables-save failed \(exit \d+\) \(.*Permission denied/);
    });

    it('fails fast and clearly when sudo wants a password, instead of hanging on a prompt', async () => {
      const started = Date.now();
      const result = await cli(['plan', '-i', writeInventory({ gw1: gatewayEntry(gw0, { ssh: { user: 'lbnopw', become: true } }) })]);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(result.code).toBe(1);
      expect(result.stdout + result.stderr).toContain('sudo requires a password for user lbnopw');
      expect(result.stdout + result.stderr).toContain('NOPASSWD');
    });
  });

  describe('broken gateways in one run', () => {
    beforeAll(async () => {
      // gw1 lost its iptables alternatives (its /etc is its own): iptables is simply not there.
      await t.lab.execOnGateway(1, ['rm', '-f', '/etc/alternatives/iptables', '/etc/alternatives/iptables-save', '/etc/alternatives/iptables-restore']);
      // A user whose every command hangs, like a gateway stuck on a dead NFS mount.
      await t.lab.execOnGateway(1, ['sh', '-c', 'printf "#!/bin/sh\\nexec sleep 3600\\n" > /etc/lbprov-e2e-hang && chmod 755 /etc/lbprov-e2e-hang']);
      await t.lab.execOnGateway(1, ['useradd', '-M', '-d', '/tmp', '-s', '/etc/lbprov-e2e-hang', 'lbhang']);
      await t.lab.execOnGateway(1, ['usermod', '-p', '*', 'lbhang']);
    });

    it('reports each broken gateway with its cause, exits 1, and the healthy one is still planned', async () => {
      const inventory = writeInventory({
        'gw-ok': gatewayEntry(gw0),
        'gw-refused': gatewayEntry(gw0, { ssh: { port: 2 } }),
        'gw-auth': gatewayEntry(gw0, { ssh: { user: 'nosuchuser' } }),
        'gw-down': gatewayEntry(gw0, { host: blackHole, ssh: { connect_timeout: 2 } }),
        // Set to iptables: with auto it would take nftables, which this gateway still has.
        'gw-no-iptables': gatewayEntry(gw1, { firewall: 'iptables' }),
        'gw-hang': gatewayEntry(gw1, { ssh: { user: 'lbhang', command_timeout: 3 } }),
      });
      const started = Date.now();
      const result = await cli(['plan', '-i', inventory, '--json']);
      const elapsed = Date.now() - started;
      expect(result.code, result.stderr).toBe(1);
      // Concurrent: the slowest failure (the 3 s command timeout) bounds the run, not the sum.
      expect(elapsed).toBeLessThan(15_000);
      const report = JSON.parse(result.stdout) as { hosts: { gateway: string; changes: unknown[] }[]; results: { gateway: string; status: string; error?: { message: string; reason: string; stderr?: string } }[] };
      const by = Object.fromEntries(report.results.map((r) => [r.gateway, r]));
      expect(by['gw-ok']!.status).toBe('changed');
      expect(report.hosts.map((h) => h.gateway)).toEqual(['gw-ok']);
      expect(report.hosts[0]!.changes.length).toBeGreaterThan(0);
      expect(by['gw-refused']).toMatchObject({ status: 'unreachable', error: { reason: 'unreachable' } });
      expect(by['gw-refused']!.error!.message).toContain(`cannot connect to ${gw0.mgmtAddress}:2 (ECONNREFUSED)`);
      expect(by['gw-auth']).toMatchObject({ status: 'unreachable', error: { reason: 'auth' } });
      expect(by['gw-auth']!.error!.message).toContain(`authentication as nosuchuser on ${gw0.mgmtAddress}:22 failed`);
      expect(by['gw-down']).toMatchObject({ status: 'unreachable', error: { reason: 'timeout' } });
      expect(by['gw-down']!.error!.message).toContain(`no SSH login to root@${blackHole}:22 within 2000 ms`);
      expect(by['gw-no-iptables']).toMatchObject({ status: 'failed', error: { reason: 'facts' } });
      expect(by['gw-no-iptables']!.error!.message).toContain('iptables-save failed (exit 127)');
      expect(by['gw-no-iptables']!.error!.stderr).toMatch(/not found/);
      expect(by['gw-hang']).toMatchObject({ status: 'unreachable', error: { reason: 'timeout' } });
      expect(by['gw-hang']!.error!.message).toContain('command timed out after 3000 ms');

      // The text report names every host with its cause too.
      const text = await cli(['plan', '-i', inventory]);
      expect(text.code).toBe(1);
      for (const line of [/gw-ok\s+changed/, /gw-refused\s+unreachable.*ECONNREFUSED/, /gw-auth\s+unreachable.*authentication/, /gw-down\s+unreachable.*within 2000 ms/, /gw-no-iptables\s+failed.*exit 127/, /gw-hang\s+unreachable.*timed out/]) {
        expect(text.stdout).toMatch(line);
      }
    });

    it('kills the hung command on the gateway instead of leaving it behind', async () => {
      // Give sshd a moment to deliver the KILL after the previous test's timeouts.
      await sleep(500);
      // Zombies (stat Z) are killed processes their parent has not reaped yet: only live ones count.
      const left = await t.lab.execOnGateway(1, ['ps', '-eo', 'user:20,stat,args']);
      expect(left.stdout.split('\n').filter((l) => /^lbhang\s+[^Z\s]/.test(l))).toEqual([]);
    });
  });
});
