#!/usr/bin/env node
/**
 * What rules and sticky sources cost, on one lab gateway per firewall backend (3 links 3:2:1, 40
 * LAN sources): the no-op plan of the plain balancer against one with 50 rules and sticky on, and
 * new TCP connections per second through the gateway (LAN client -> server, every connection
 * passing all 50 rules before the pool) with no balancer (the lab's one-link NAT), the plain
 * balancer, and the balancer with the rules. Prints a markdown table for the README.
 *
 *   node bench/policy.mjs [--firewalls iptables,nftables] [--connections 3000] [--runs 5]
 *
 * Root only (namespaces). Figures are medians of --runs; compare ratios within one run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { countConnections, createLab } from '../dist/lab/index.js';
import { CLI } from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    firewalls: { type: 'string', default: 'iptables,nftables' },
    connections: { type: 'string', default: '3000' },
    runs: { type: 'string', default: '5' },
  },
});
const runs = Number(args.runs);
const connections = Number(args.connections);
const work = mkdtempSync(join(tmpdir(), 'lbprov-bench-policy-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** 25 port rules and 25 destination rules, none of which the measured traffic matches. */
function fiftyRules() {
  return [
    ...Array.from({ length: 25 }, (_, i) => ({ name: `port${i}`, proto: 'tcp', dport: [20000 + i * 10, `${30000 + i * 10}-${30000 + i * 10 + 5}`], via: ['isp2', 'isp3'] })),
    ...Array.from({ length: 25 }, (_, i) => ({ name: `net${i}`, dst: [`203.0.113.${192 + (i % 16) * 4}/30`, `192.0.2.${i * 8}/29`], via: i % 2 ? 'main' : ['isp1'] })),
  ];
}

function inventory(lab, name, policy) {
  const doc = parseDocument(readFileSync(lab.state.inventoryPath, 'utf8'));
  if (policy) {
    doc.setIn(['gateways', 'gw1', 'rules'], fiftyRules());
    doc.setIn(['gateways', 'gw1', 'sticky'], { timeout: 600 });
  }
  const path = join(work, `${name}.yml`);
  writeFileSync(path, doc.toString({ lineWidth: 0 }));
  return path;
}

function cli(argv, codes = [0]) {
  const started = performance.now();
  try {
    execFileSync(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  } catch (e) {
    if (!codes.includes(e.status)) throw new Error(`lbprov ${argv.join(' ')} exited ${e.status}: ${e.stdout}${e.stderr}`);
  }
  return performance.now() - started;
}

/**
 * Median connections per second from one LAN source: many sources cycling through ports make the
 * server's TIME_WAIT sockets collide with reused client ports now and then (1 s SYN retries), which
 * measures the lab, not the gateway.
 */
async function rate(lab) {
  const rates = [];
  for (let i = 0; i < runs; i++) {
    const c = await countConnections(lab, 0, connections, { concurrency: 32 });
    if (Object.keys(c.errors).length) throw new Error(`connection errors: ${JSON.stringify(c.errors)}`);
    rates.push((c.attempted / c.elapsedMs) * 1000);
    execFileSync('ip', ['netns', 'exec', lab.gateway(0).ns, 'conntrack', '-F'], { stdio: 'ignore' });
  }
  return median(rates);
}

const rows = [];
for (const firewall of args.firewalls.split(',')) {
  const lab = await createLab({ gateways: 1, weights: [3, 2, 1], lanSources: 40, firewall, dir: join(work, `lab-${firewall}`) });
  try {
    const plain = inventory(lab, `plain-${firewall}`, false);
    const policy = inventory(lab, `policy-${firewall}`, true);
    const none = await rate(lab);
    cli(['up', '-i', plain, '--yes']);
    const plainPlan = median(Array.from({ length: runs }, () => cli(['plan', '-i', plain])));
    const balanced = await rate(lab);
    cli(['up', '-i', policy, '--yes']);
    const policyPlan = median(Array.from({ length: runs }, () => cli(['plan', '-i', policy])));
    const ruled = await rate(lab);
    rows.push({ firewall, none, balanced, ruled, plainPlan, policyPlan });
    process.stderr.write(`${firewall}: ${JSON.stringify(rows.at(-1))}\n`);
  } finally {
    await lab.destroy();
  }
}
rmSync(work, { recursive: true, force: true });

const f = (n) => n.toFixed(0);
console.log('| backend | no-op plan, plain balancer | no-op plan, 50 rules + sticky | new connections/s: no balancer | plain balancer | 50 rules + sticky |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.firewall} | ${(r.plainPlan / 1000).toFixed(2)} s | ${(r.policyPlan / 1000).toFixed(2)} s | ${f(r.none)} | ${f(r.balanced)} (${f((r.balanced / r.none) * 100)} %) | ${f(r.ruled)} (${f((r.ruled / r.none) * 100)} %) |`);
}
