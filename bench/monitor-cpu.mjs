#!/usr/bin/env node
/**
 * The link monitor's CPU on a lab gateway (3 links, real ping probes that answer), as a share of
 * one core, measured over --seconds (default 300: the five minutes) for each interval.
 * Counted: the worker and everything under it (its pings, their readers, ip monitor, the tick and
 * whatever they ran and reaped), from /proc/<pid>/stat: utime + stime + cutime + cstime of each
 * live process, so a finished child counts once, in its parent's cutime.
 *
 *   node bench/monitor-cpu.mjs [--intervals 1,0.2] [--seconds 300] [--firewall nftables]
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { createLab } from '../dist/lab/index.js';
import { ROOT } from './lib.mjs';

const { values: args } = parseArgs({
  options: { intervals: { type: 'string', default: '1,0.2' }, seconds: { type: 'string', default: '300' }, firewall: { type: 'string', default: 'nftables' } },
});
const HZ = 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function stat(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { ppid: Number(fields[1]), ticks: [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) };
  } catch {
    return null;
  }
}

/** CPU ticks of `root` and all its descendants alive now. */
function treeTicks(root) {
  const procs = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(entry);
    if (s) procs.set(Number(entry), s);
  }
  const inTree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, s] of procs) if (!inTree.has(pid) && inTree.has(s.ppid)) (inTree.add(pid), (grew = true));
  }
  return { ticks: [...inTree].reduce((sum, pid) => sum + (procs.get(pid)?.ticks ?? 0), 0), processes: inTree.size };
}

const rows = [];
for (const interval of args.intervals.split(',').map(Number)) {
  const lab = await createLab({ gateways: 1, weights: [3, 2, 1], firewall: args.firewall });
  try {
    const doc = parseDocument(readFileSync(lab.state.inventoryPath, 'utf8'));
    doc.setIn(['defaults', 'monitor'], { interval, timeout: Math.min(1, interval) });
    writeFileSync(lab.state.inventoryPath, doc.toString({ lineWidth: 0 }));
    execFileSync(process.execPath, [join(ROOT, 'dist/lbprov.mjs'), 'up', '-i', lab.state.inventoryPath, '--yes'], { stdio: 'ignore' });
    await sleep(10_000);
    const worker = Number((await lab.execOnGateway(0, ['cat', '/run/lbprov/monitor.worker.pid'])).stdout.trim());
    const before = treeTicks(worker);
    const started = performance.now();
    await sleep(Number(args.seconds) * 1000);
    const after = treeTicks(worker);
    const seconds = (performance.now() - started) / 1000;
    const cpuPct = ((after.ticks - before.ticks) / HZ / seconds) * 100;
    rows.push({ interval, seconds, cpuPct, processes: after.processes });
    process.stderr.write(`interval ${interval} s: ${cpuPct.toFixed(3)} % of one core over ${seconds.toFixed(0)} s (${after.processes} processes)\n`);
  } finally {
    await lab.destroy();
  }
}
console.log('| probe interval | monitor CPU (share of one core) | measured over | processes (steady) |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.interval} s | ${r.cpuPct.toFixed(2)} % | ${r.seconds.toFixed(0)} s | ${r.processes} |`);
