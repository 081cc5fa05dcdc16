#!/usr/bin/env node
/**
 * How big a lab this machine holds: build time, sshd memory and kernel memory per size.
 * Usage (root, after `npm run build`): node bench/lab-scale.mjs [10,50,100]
 */
import { readFileSync } from 'node:fs';
import { createLab } from '../dist/lab/index.js';

const sizes = (process.argv[2] ?? '10,50,100').split(',').map(Number);

function memAvailableKiB() {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? NaN);
}

/** RSS and PSS (shared pages split among sharers: what N sshds really cost) of one process. */
function memoryKiB(pid) {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0);
    return { rss: field('Rss'), pss: field('Pss') };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

export async function measureLab(gateways) {
  const before = memAvailableKiB();
  const started = performance.now();
  const lab = await createLab({ gateways });
  const buildMs = performance.now() - started;
  try {
    const sshd = lab.state.processes.filter((p) => p.role.startsWith('sshd '));
    const memory = sshd.map((p) => memoryKiB(p.pid));
    const sshdRssKiB = memory.reduce((sum, m) => sum + m.rss, 0);
    const sshdPssKiB = memory.reduce((sum, m) => sum + m.pss, 0);
    const usedKiB = before - memAvailableKiB();
    return { gateways, buildMs, sshdRssKiB, sshdPssKiB, usedKiB, namespaces: lab.state.namespaces.length };
  } finally {
    const t = performance.now();
    await lab.destroy();
    console.error(`  destroy ${gateways}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log('| gateways | namespaces | build (s) | sshd RSS sum (MiB) | sshd PSS sum (MiB) | PSS per gateway (MiB) | MemAvailable drop (MiB) |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const n of sizes) {
    const m = await measureLab(n);
    console.log(`| ${n} | ${m.namespaces} | ${(m.buildMs / 1000).toFixed(1)} | ${(m.sshdRssKiB / 1024).toFixed(1)} | ${(m.sshdPssKiB / 1024).toFixed(1)} | ${(m.sshdPssKiB / 1024 / n).toFixed(2)} | ${(m.usedKiB / 1024).toFixed(0)} |`);
  }
}
