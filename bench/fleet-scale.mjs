#!/usr/bin/env node
/**
 * lbprov over a large lab (default 1,000 gateways, management in 198.18.0.0/15): the lab's build
 * time, memory per gateway and teardown; then, with the default playbook (monitor included),
 * plan (first), up (first), plan (no-op) and up (no-op): wall time, controller CPU and peak RSS,
 * the gateways' CPU (their sshd and everything it ran), connection retries. Prints a markdown table.
 *
 *   node bench/fleet-scale.mjs [--gateways 1000] [--forks auto] [--firewall nftables] [--interval 30]
 *
 * Root only. `--interval` is the monitor's probe interval written into the lab inventory: every
 * gateway of this lab shares the benchmark machine's two cores, which a thousand monitors probing
 * every two seconds would keep busy (a real gateway has its own CPU). Their probe targets answer.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLab } from '../dist/lab/index.js';
import { CLI, gatewayCpuMs, ROOT, timed } from './lib.mjs';

const PLAYBOOK = join(ROOT, 'playbooks/balancer.yml');

const { values: args } = parseArgs({
  options: {
    gateways: { type: 'string', default: '1000' },
    forks: { type: 'string', default: 'auto' },
    firewall: { type: 'string', default: 'nftables' },
    interval: { type: 'string', default: '30' },
  },
});
const gateways = Number(args.gateways);

function memAvailableKiB() {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? NaN);
}

const work = mkdtempSync(join(tmpdir(), 'lbprov-fleet-'));
const memBefore = memAvailableKiB();
let started = performance.now();
const lab = await createLab({ gateways, weights: [3, 1], dir: join(work, 'lab'), inventoryPath: join(work, 'inventory.yml'), firewall: args.firewall });
const buildS = (performance.now() - started) / 1000;
const perGatewayMiB = (memBefore - memAvailableKiB()) / 1024 / gateways;
const rows = [];
try {
  const inventory = readFileSync(lab.inventoryPath, 'utf8');
  const monitor = `  monitor: { interval: ${Number(args.interval)} }`;
  writeFileSync(lab.inventoryPath, /^defaults:$/m.test(inventory) ? inventory.replace(/^defaults:$/m, `defaults:\n${monitor}`) : inventory.replace(/^gateways:$/m, `defaults:\n${monitor}\ngateways:`));
  for (const [step, cmd, codes] of [
    ['plan (first)', ['plan'], [2]],
    ['up (first)', ['up', '--yes', '--json'], [0]],
    ['plan (no-op)', ['plan'], [0]],
    ['up (no-op)', ['up', '--yes', '--json'], [0]],
  ]) {
    const cpuBefore = gatewayCpuMs(lab);
    const result = await timed(work, [process.execPath, CLI, ...cmd, '-i', lab.inventoryPath, '-p', PLAYBOOK, '-f', args.forks]);
    if (!codes.includes(result.code)) throw new Error(`${step} exited ${result.code}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
    let retries = 0;
    if (cmd.includes('--json')) for (const r of JSON.parse(result.stdout).results ?? []) retries += r.connectRetries ?? 0;
    rows.push({ step, ...result, gatewayCpuMs: gatewayCpuMs(lab) - cpuBefore, retries });
    process.stderr.write(`${step}: ${(result.wallMs / 1000).toFixed(1)} s\n`);
  }
} finally {
  started = performance.now();
  await lab.destroy();
  rmSync(work, { recursive: true, force: true });
}
const teardownS = (performance.now() - started) / 1000;

const s = (ms) => (ms / 1000).toFixed(1);
console.log(`Lab of ${gateways} gateways (${args.firewall}): built in ${buildS.toFixed(0)} s, ${perGatewayMiB.toFixed(1)} MiB per gateway, removed in ${teardownS.toFixed(0)} s; forks ${args.forks}, monitor every ${args.interval} s.\n`);
console.log('| step | wall s | controller CPU s | controller peak RSS MiB | gateways CPU s | connect retries |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.step} | ${s(r.wallMs)} | ${s(r.cpuMs)} | ${(r.maxRssKiB / 1024).toFixed(0)} | ${s(r.gatewayCpuMs)} | ${r.step.startsWith('up') ? r.retries : '-'} |`);
