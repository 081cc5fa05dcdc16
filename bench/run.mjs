#!/usr/bin/env node
/**
 * lbprov against the namespace lab, and the same job done with a tuned Ansible playbook, on
 * identical freshly built labs. Prints a markdown table for the README.
 *
 *   npm run bench -- [--sizes 1,10,50,100] [--ansible-sizes 1,10,50,100|none] [--forks 50]
 *                    [--firewalls iptables,nftables] [--playbook bench/balancer-rules.yml] [--out FILE]
 *
 * The default playbook is the same job as the Ansible playbook (rules, routes, sysctls, no link
 * monitor: 100 monitors probing every 2 s would load this 2-core machine that also hosts the
 * gateways). `--playbook playbooks/balancer.yml` measures lbprov's full job. `--firewalls` lists the
 * backends lbprov runs with, each on a lab of its own, in the same run (Ansible's playbook is the
 * iptables job, compared with the iptables rows).
 *
 * Root only (namespaces). Installs Debian's ansible-core when ansible-playbook is missing. Per size:
 * lbprov plan (first), up (first), plan (no-op), up (no-op) on one lab; then Ansible's
 * --check --diff, run, --check, run on a second lab built the same way. Wall and CPU time come
 * from GNU time (the child and everything it waited for); round trips from LBPROV_TRACE.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLab } from '../dist/lab/index.js';
import { weightedPool } from '../dist/render/pool.js';
import { CLI, gatewayCpuMs, ROOT, timed } from './lib.mjs';

const PLAYBOOK = join(ROOT, 'bench/ansible/balancer.yml');

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,10,50,100' },
    'ansible-sizes': { type: 'string' },
    forks: { type: 'string', default: '50' },
    weights: { type: 'string', default: '3,1' },
    firewalls: { type: 'string', default: 'iptables' },
    playbook: { type: 'string', default: join(ROOT, 'bench/balancer-rules.yml') },
    out: { type: 'string' },
  },
});
const sizes = args.sizes.split(',').map(Number);
const ansibleSizes = args['ansible-sizes'] === 'none' ? [] : (args['ansible-sizes'] ?? args.sizes).split(',').map(Number);
const forks = Number(args.forks);
const weights = args.weights.split(',').map(Number);
const firewalls = args.firewalls.split(',');

function roundTrips(traceFile, hosts) {
  const perHost = new Map(hosts.map((h) => [h, 0]));
  if (existsSync(traceFile)) {
    for (const line of readFileSync(traceFile, 'utf8').split('\n').filter(Boolean)) {
      const { host } = JSON.parse(line);
      perHost.set(host, (perHost.get(host) ?? 0) + 1);
    }
  }
  const counts = [...perHost.values()];
  return { min: Math.min(...counts), max: Math.max(...counts) };
}

function expectCode(step, result, codes) {
  if (!codes.includes(result.code)) {
    throw new Error(`${step} exited ${result.code}, expected ${codes.join(' or ')}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
  }
}

function mangleChains(lab) {
  return execFileSync('nsenter', [`--net=/run/netns/${lab.gateways[0].ns}`, 'iptables-save', '-t', 'mangle'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /^-A LBPROV_(PRE|BALANCE|OUT) /.test(l))
    .join('\n');
}

/** Labs alive right now: a benchmark stopped by a signal removes them before it exits. */
const liveLabs = new Set();

async function withLab(name, n, use, firewall) {
  const lab = await createLab({ gateways: n, weights, lanClients: 'none', dir: join(work, `lab-${name}-${n}`), ...(firewall ? { firewall } : {}) });
  liveLabs.add(lab);
  try {
    return await use(lab);
  } finally {
    liveLabs.delete(lab);
    await lab.destroy();
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    process.stderr.write(`${signal}: removing ${liveLabs.size} lab(s)\n`);
    for (const lab of liveLabs) await lab.destroy().catch(() => {});
    rmSync(work, { recursive: true, force: true });
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

async function benchLbprov(n, firewall) {
  return withLab(`lbprov-${firewall}`, n, async (lab) => {
    const hosts = lab.gateways.map((g) => g.name);
    const rows = {};
    const steps = [
      ['plan (first)', ['plan', '--json'], [2]],
      ['up (first)', ['up', '--yes', '--json'], [0]],
      ['plan (no-op)', ['plan', '--json'], [0]],
      ['up (no-op)', ['up', '--yes', '--json'], [0]],
    ];
    for (const [step, cmd, codes] of steps) {
      const trace = join(work, `trace-${firewall}-${n}-${step.replace(/\W+/g, '-')}.jsonl`);
      const cpuBefore = gatewayCpuMs(lab);
      const result = await timed(work, [process.execPath, CLI, ...cmd, '-i', lab.inventoryPath, '-p', resolve(args.playbook), '-f', String(forks)], { env: { LBPROV_TRACE: trace } });
      expectCode(`lbprov ${step} over ${n}`, result, codes);
      rows[step] = { ...result, gatewayCpuMs: gatewayCpuMs(lab) - cpuBefore, trips: roundTrips(trace, hosts) };
      process.stderr.write(`  lbprov (${firewall}) ${step} x${n}: ${(result.wallMs / 1000).toFixed(2)} s\n`);
    }
    return { rows, mangle: firewall === 'iptables' ? mangleChains(lab) : null };
  }, firewall);
}

/** GNU time measures each command's CPU; Debian's `time` package, installed when missing. */
function ensureGnuTime() {
  if (existsSync('/usr/bin/time')) return;
  process.stderr.write('installing Debian time ...\n');
  execFileSync('apt-get', ['install', '-y', '-q', 'time'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function ensureAnsible() {
  try {
    execFileSync('ansible-playbook', ['--version'], { stdio: 'ignore' });
  } catch {
    process.stderr.write('installing Debian ansible-core ...\n');
    execFileSync('apt-get', ['install', '-y', '-q', 'ansible-core'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  return execFileSync('ansible-playbook', ['--version'], { encoding: 'utf8' }).split('\n')[0];
}

/** Inventory and config for Ansible from the lab's own state: same hosts, key and known_hosts. */
function writeAnsibleSetup(lab, dir) {
  const pool = weightedPool(weights);
  const hosts = Object.fromEntries(
    lab.gateways.map((g) => {
      const links = g.links.map((l, i) => ({
        name: l.name,
        interface: l.interface,
        next_hop: l.nextHop,
        address: l.gatewayAddress,
        mark: `0x${((i + 1) << 28 >>> 0).toString(16)}`,
        table: 101 + i,
        mark_priority: 101 + i,
        source_priority: 111 + i,
      }));
      return [g.name, { ansible_host: g.mgmtAddress, lan_interfaces: [g.lanInterface], links, pool: pool.map((i) => links[i].mark) }];
    }),
  );
  const inventory = {
    all: {
      vars: {
        ansible_user: lab.state.ssh.user,
        ansible_port: lab.state.ssh.port,
        ansible_ssh_private_key_file: lab.state.ssh.identityFile,
        ansible_ssh_common_args: `-o UserKnownHostsFile=${lab.state.ssh.knownHosts} -o StrictHostKeyChecking=yes -o KexAlgorithms=curve25519-sha256`,
        ansible_python_interpreter: '/usr/bin/python3',
        mark_mask: '0xf0000000',
        suppress_priority: 100,
      },
      children: { gateways: { hosts } },
    },
  };
  writeFileSync(join(dir, 'inventory.json'), JSON.stringify(inventory));
  // ControlPath under our own short dir; the masters persist across the four runs of a size.
  writeFileSync(
    join(dir, 'ansible.cfg'),
    [
      '[defaults]',
      `forks = ${forks}`,
      'host_key_checking = True',
      'gathering = explicit',
      'retry_files_enabled = False',
      'interpreter_python = /usr/bin/python3',
      '[ssh_connection]',
      'pipelining = True',
      `control_path_dir = ${join(dir, 'cp')}`,
      'control_path = %(directory)s/%%C',
      'ssh_args = -o ControlMaster=auto -o ControlPersist=120s',
      '',
    ].join('\n'),
  );
}

function closeControlMasters(lab, dir) {
  for (const g of lab.gateways) {
    try {
      execFileSync('ssh', ['-o', `ControlPath=${join(dir, 'cp')}/%C`, '-O', 'exit', '-p', String(lab.state.ssh.port), `${lab.state.ssh.user}@${g.mgmtAddress}`], { stdio: 'ignore' });
    } catch {
      // no master for this host: nothing to stop
    }
  }
}

function ansibleRecap(output) {
  const totals = { changed: 0, failed: 0, unreachable: 0 };
  for (const m of output.matchAll(/changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/g)) {
    totals.changed += Number(m[1]);
    totals.unreachable += Number(m[2]);
    totals.failed += Number(m[3]);
  }
  return totals;
}

async function benchAnsible(n) {
  return withLab('ansible', n, async (lab) => {
    const dir = mkdtempSync(join(work, `ansible-${n}-`));
    try {
      writeAnsibleSetup(lab, dir);
      const rows = {};
      const steps = [
        ['plan (first)', ['--check', '--diff']],
        ['up (first)', []],
        ['plan (no-op)', ['--check', '--diff']],
        ['up (no-op)', []],
      ];
      for (const [step, flags] of steps) {
        const cpuBefore = gatewayCpuMs(lab);
        const result = await timed(work, ['ansible-playbook', '-i', join(dir, 'inventory.json'), PLAYBOOK, ...flags], { cwd: dir, env: { ANSIBLE_CONFIG: join(dir, 'ansible.cfg') } });
        const recap = ansibleRecap(result.stdout);
        if (result.code !== 0 || recap.failed > 0 || recap.unreachable > 0) {
          throw new Error(`ansible ${step} over ${n}: exit ${result.code}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`);
        }
        if (step.includes('no-op') && recap.changed > 0) throw new Error(`ansible ${step} over ${n} reported ${recap.changed} changes`);
        rows[step] = { ...result, gatewayCpuMs: gatewayCpuMs(lab) - cpuBefore };
        process.stderr.write(`  ansible ${step} x${n}: ${(result.wallMs / 1000).toFixed(2)} s\n`);
      }
      return { rows, mangle: mangleChains(lab) };
    } finally {
      closeControlMasters(lab, dir);
    }
  });
}

const seconds = (ms) => (ms / 1000).toFixed(2);

const work = mkdtempSync(join(tmpdir(), 'lbprov-bench-'));
const loadAtStart = loadavg()[0];
try {
  if (process.getuid?.() !== 0) throw new Error('the benchmark builds network namespaces: run it as root');
  ensureGnuTime();
  const ansibleVersion = ansibleSizes.length > 0 ? ensureAnsible() : null;
  const sshVersion = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim().split(',')[0];
  const table = [
    '| gateways | step | backend | lbprov wall (s) | lbprov CPU: controller / gateways (s) | round trips / gateway | Ansible wall (s) | Ansible CPU: controller / gateways (s) | Ansible ÷ lbprov (wall) |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  const findings = [];
  for (const n of sizes) {
    process.stderr.write(`${n} gateway(s)\n`);
    const byBackend = {};
    for (const firewall of firewalls) byBackend[firewall] = await benchLbprov(n, firewall);
    const ours = byBackend.iptables ?? byBackend[firewalls[0]];
    const theirs = ansibleSizes.includes(n) ? await benchAnsible(n) : null;
    if (theirs && byBackend.iptables && theirs.mangle !== ours.mangle) findings.push(`${n}: Ansible's mangle chains differ from lbprov's on gw1 (the comparison is not like for like)`);
    for (const step of Object.keys(ours.rows)) {
      for (const firewall of firewalls) {
        const r = byBackend[firewall].rows[step];
        const a = firewall === 'iptables' ? theirs?.rows[step] : undefined;
        const trips = r.trips.min === r.trips.max ? String(r.trips.min) : `${r.trips.min}–${r.trips.max}`;
        table.push(`| ${n} | ${step} | ${firewall} | ${seconds(r.wallMs)} | ${seconds(r.cpuMs)} / ${seconds(r.gatewayCpuMs)} | ${trips} | ${a ? seconds(a.wallMs) : '–'} | ${a ? `${seconds(a.cpuMs)} / ${seconds(a.gatewayCpuMs)}` : '–'} | ${a ? `${(a.wallMs / r.wallMs).toFixed(1)}×` : '–'} |`);
      }
    }
    const noop = ours.rows['plan (no-op)'];
    if (n === 100) findings.push(`no-op plan over 100: ${seconds(noop.wallMs)} s (target <= 3 s: ${noop.wallMs <= 3000 ? 'met' : 'MISSED'})`);
    for (const step of ['plan (first)', 'plan (no-op)']) {
      const t = ours.rows[step].trips;
      if (t.min !== 1 || t.max !== 1) findings.push(`${n}: ${step} made ${t.min}–${t.max} round trips per gateway (target: exactly 1)`);
    }
    if (theirs) {
      const worst = Math.min(...Object.keys(ours.rows).map((s) => theirs.rows[s].wallMs / ours.rows[s].wallMs));
      findings.push(`${n}: lbprov is ${worst.toFixed(1)}× faster than Ansible in its worst step (target >= 30×: ${worst >= 30 ? 'met' : 'MISSED'})`);
    }
  }
  const nodeVersion = process.version;
  // The machine may be shared: the load says how much the numbers can be trusted.
  findings.push(`load average at start ${loadAtStart.toFixed(1)}, at end ${loadavg()[0].toFixed(1)} (2 cores: above ~2 the numbers include waiting for other work)`);
  const report = [
    `lbprov benchmark, ${new Date().toISOString().slice(0, 10)}: ${sizes.join('/')} namespace gateways, ${weights.length} links (${weights.join(':')}), forks ${forks}, ` +
      `lbprov playbook ${relative(ROOT, resolve(args.playbook))} (${firewalls.join(', ')}), node ${nodeVersion}, ${sshVersion}${ansibleVersion ? `, ${ansibleVersion} (pipelining, ControlPersist, KexAlgorithms=curve25519-sha256, no fact gathering)` : ''}.`,
    '',
    ...table,
    '',
    ...findings.map((f) => `- ${f}`),
    '',
  ].join('\n');
  process.stdout.write(report);
  if (args.out) writeFileSync(args.out, report);
} finally {
  rmSync(work, { recursive: true, force: true });
}
