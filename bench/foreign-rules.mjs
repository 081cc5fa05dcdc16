#!/usr/bin/env node
/**
 * What other software's firewall rules and routes cost lbprov, on one lab gateway per firewall
 * backend: the no-op plan on the clean gateway, then on the same gateway with a blocklist-style
 * load of foreign state (20,000 iptables rules in a filter chain, 20,000 rules in a foreign nft
 * table, 2,000 routes half in the main table and half in a foreign table 4242), which is then
 * removed again, --rounds times. Also the bytes the facts script prints over SSH, clean and loaded.
 * Prints a markdown table for the README.
 *
 *   node bench/foreign-rules.mjs [--firewalls iptables,nftables] [--runs 5] [--rounds 3] [--rules 20000] [--routes 2000]
 *
 * Root only (namespaces). Each round takes the median of --runs plans, clean and loaded, a minute
 * apart at most; the table shows the median over the rounds, ratios included (a round's own ratio),
 * in wall time and in the CPU time of the lbprov process (parsing; what a busy machine inflates least).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLab } from '../dist/lab/index.js';
import { buildFactsScript } from '../dist/facts/script.js';
import { ownedRanges } from '../dist/model/ownership.js';
import { CLI } from './lib.mjs';

/** The lab's LAN client: a next hop the gateway reaches directly. */
const LAN_NEXT_HOP = '198.51.100.2';
const FOREIGN_TABLE = 4242;
const { values: args } = parseArgs({
  options: {
    firewalls: { type: 'string', default: 'iptables,nftables' },
    runs: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    rules: { type: 'string', default: '20000' },
    routes: { type: 'string', default: '2000' },
  },
});
const runs = Number(args.runs);
const rounds = Number(args.rounds);
const ruleCount = Number(args.rules);
const routeCount = Number(args.routes);
const work = mkdtempSync(join(tmpdir(), 'lbprov-bench-foreign-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The i-th address of 198.18.0.0/15 from `offset` on. */
const benchmarkAddress = (offset, i) => {
  const n = offset + i;
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
};

/** One CLI run: wall time, and the CPU time lbprov itself used (GNU time: the node process and its children). */
function cli(argv) {
  const timeFile = join(work, 'time');
  const started = performance.now();
  try {
    execFileSync('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, process.execPath, CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  } catch (e) {
    throw new Error(`lbprov ${argv.join(' ')} exited ${e.status}: ${e.stdout}${e.stderr}`);
  }
  const wallMs = performance.now() - started;
  const [user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  return { wallMs, cpuMs: (user + sys) * 1000 };
}

async function onGateway(lab, argv, input) {
  const r = await lab.execOnGateway(0, argv, { input });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const FOREIGN_ROUTE_PREFIX = '198.19.0.0/16';

/** A fail2ban/blocklist-style load: a filter chain of DROP rules jumped to from INPUT, the same in an nft table, and routes. */
async function addForeignState(lab) {
  const drops = Array.from({ length: ruleCount }, (_, i) => `-A f2b-blocklist -s ${benchmarkAddress(0, i)}/32 -j DROP`);
  await onGateway(lab, ['iptables-restore', '--noflush'], ['*filter', ':f2b-blocklist - [0:0]', ...drops, '-A INPUT -j f2b-blocklist', 'COMMIT', ''].join('\n'));
  const nftDrops = Array.from({ length: ruleCount }, (_, i) => `add rule inet blocklist input ip saddr ${benchmarkAddress(0, i)} drop`);
  await onGateway(lab, ['nft', '-f', '-'], ['add table inet blocklist', 'add chain inet blocklist input { type filter hook input priority 0; policy accept; }', ...nftDrops, ''].join('\n'));
  const routes = Array.from({ length: routeCount }, (_, i) => `route add ${benchmarkAddress(1 << 16, i)}/32 via ${LAN_NEXT_HOP}${i % 2 ? ` table ${FOREIGN_TABLE}` : ''}`);
  await onGateway(lab, ['ip', '-batch', '-'], routes.join('\n') + '\n');
}

async function removeForeignState(lab) {
  await onGateway(lab, ['iptables-restore', '--noflush'], ['*filter', '-D INPUT -j f2b-blocklist', '-F f2b-blocklist', '-X f2b-blocklist', 'COMMIT', ''].join('\n'));
  await onGateway(lab, ['nft', 'delete', 'table', 'inet', 'blocklist']);
  await onGateway(lab, ['ip', '-batch', '-'], `route flush root ${FOREIGN_ROUTE_PREFIX} table main\nroute flush table ${FOREIGN_TABLE}\n`);
}

/** Bytes the facts script's firewall and routing sections print (core sections left at their minimum). */
async function factsBytes(lab, firewall) {
  const { script } = buildFactsScript({ sysctlKeys: [], filePaths: [], services: [], ranges: ownedRanges({ tableBase: 100, priorityBase: 100 }), firewall, firewallCandidates: [firewall] });
  return Buffer.byteLength(await onGateway(lab, ['sh', '-c', script]));
}

async function measure(lab, firewall) {
  cli(['plan', '-i', lab.inventoryPath]);
  const plans = Array.from({ length: runs }, () => cli(['plan', '-i', lab.inventoryPath]));
  return { wallMs: median(plans.map((p) => p.wallMs)), cpuMs: median(plans.map((p) => p.cpuMs)), bytes: await factsBytes(lab, firewall) };
}

const rows = [];
try {
  for (const firewall of args.firewalls.split(',')) {
    const lab = await createLab({ gateways: 1, firewall, dir: join(work, `lab-${firewall}`) });
    try {
      cli(['up', '-i', lab.inventoryPath, '--yes']);
      const measured = [];
      for (let round = 0; round < rounds; round++) {
        const clean = await measure(lab, firewall);
        await addForeignState(lab);
        const big = await measure(lab, firewall);
        await removeForeignState(lab);
        measured.push({ clean, big });
        process.stderr.write(`${firewall} round ${round + 1}: ${JSON.stringify({ clean, big })}\n`);
      }
      const of = (pick) => median(measured.map(pick));
      rows.push({
        firewall,
        clean: { wallMs: of((m) => m.clean.wallMs), cpuMs: of((m) => m.clean.cpuMs), bytes: measured[0].clean.bytes },
        big: { wallMs: of((m) => m.big.wallMs), cpuMs: of((m) => m.big.cpuMs), bytes: measured[0].big.bytes },
        wallRatio: of((m) => m.big.wallMs / m.clean.wallMs),
        cpuRatio: of((m) => m.big.cpuMs / m.clean.cpuMs),
      });
    } finally {
      await lab.destroy();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const ms = (n) => `${n.toFixed(0)} ms`;
console.log(`| backend | no-op plan, clean: wall / lbprov CPU | with ${ruleCount} foreign rules + ${routeCount} routes | ratio, wall / CPU | facts, clean / foreign |`);
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.firewall} | ${ms(r.clean.wallMs)} / ${ms(r.clean.cpuMs)} | ${ms(r.big.wallMs)} / ${ms(r.big.cpuMs)} | ${r.wallRatio.toFixed(2)}x / ${r.cpuRatio.toFixed(2)}x | ${kb(r.clean.bytes)} / ${kb(r.big.bytes)} |`);
}
