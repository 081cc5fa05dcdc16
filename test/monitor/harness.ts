/**
 * Runs the real monitor script (rendered from the shipped templates) under sh, driven through
 * its own FIFO: the test writes the lines its probers would relay ("@p ..."), its tick ("@t"),
 * kernel events and "@sync N" (answered by a state file with sync=N), and sets the clock file
 * the monitor reads instead of /proc/uptime. Stubs on PATH: `ip` keeps a small kernel in a text
 * file (what `ip -N -o -4 -batch` prints, changed by route and rule commands), `ping` only sleeps,
 * `nft`, `iptables-restore`, `conntrack` and `logger` record what they are asked.
 * The real prober path (ping -> reader -> FIFO) runs in the lab tests (test/e2e).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { renderDesiredState } from '../../src/render/desired.js';
import type { GatewaySpec, MonitorSettings } from '../../src/model/inventory.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { FileResource, Resource } from '../../src/model/resources.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';

/** `date +%s` in the sandbox; the monitor's wall clock is this plus the uptime it has seen pass. */
export const EPOCH = 1_000_000;

export const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
export const templates = loadTemplateSet(playbook.templatesDir);

/** A gateway spec with the given weights and monitor settings on every link. */
export function monitoredGateway(weights: number[], monitor: Partial<MonitorSettings> = {}): GatewaySpec {
  const gw = gatewaySpec(weights);
  const settings: MonitorSettings = { intervalS: 1, timeoutS: 1, reliability: 1, down: 3, up: 2, latencyMs: null, lossPct: null, window: 10, flap: null, ...monitor };
  return { ...gw, links: gw.links.map((l) => ({ ...l, monitor: { ...settings } })) };
}

const KERNEL_STUB = `
k="$DATA/kernel"
case "$*" in
"-N -o -4 -batch -") cat "$k" ;;
"-4 -o monitor "*) while kill -0 $PPID 2>/dev/null; do sleep 1; done ;;
"route replace "*)
	rest=\${*#route replace }
	table=\${rest##* table }
	awk -v t="$table" '!($0 ~ ("^(7 |unreachable )?default.* table " t "( |$)"))' "$k" >"$k.new"
	echo "\${rest% table *} table $table" >>"$k.new" && mv "$k.new" "$k" ;;
"route del default table "*)
	awk -v t="\${*##* }" '!($0 ~ ("^(7 |unreachable )?default.* table " t "( |$)"))' "$k" >"$k.new" && mv "$k.new" "$k" ;;
"rule add priority "*)
	set -- $*
	printf '%s:\\tfrom %s lookup %s\\n' "$4" "$6" "$8" >>"$k" ;;
"rule del priority "*)
	set -- $*
	awk -v l="$4:	from $6 lookup $8" '$0 != l' "$k" >"$k.new" && mv "$k.new" "$k" ;;
esac`;

const STUBS: Record<string, string> = {
  date: `case "$1" in +%s) echo ${EPOCH} ;; *) echo T ;; esac`,
  // Until the monitor that started it is gone, even if it was killed before it could stop its children.
  // The loopback's is the monitor's tick (a line per second, as `ping -O` prints); the others are probes.
  // The file no-loopback makes it fail at once, as on a gateway whose loopback is down.
  ping: `case " $* " in *" 127.0.0.1 "*) [ -e "$DATA/no-loopback" ] && exit 2; while kill -0 $PPID 2>/dev/null; do echo "no answer yet for icmp_seq=1"; sleep 1; done; exit 0 ;; esac
echo "$*" >>"$DATA/pings"; while kill -0 $PPID 2>/dev/null; do sleep 1; done`,
  ip: KERNEL_STUB,
  nft: '{ echo "@@ t=$(cat "$DATA/uptime") $*"; cat; } >>"$DATA/swaps"',
  'iptables-restore': '{ echo "@@ t=$(cat "$DATA/uptime")"; cat; } >>"$DATA/swaps"',
  conntrack: 'echo "$(cat "$DATA/uptime" | cut -d" " -f1) $*" >>"$DATA/conntrack"; echo "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted." >&2',
  logger: ':',
};

/** An interface of the stub kernel. */
export interface KernelInterface {
  name: string;
  index: number;
  /** Up with carrier (default true). */
  up?: boolean;
  address?: string;
  prefixLength?: number;
  /** Point-to-point: the peer's address (printed as `inet A peer P/32`). */
  peer?: string;
}

export interface KernelRoute {
  via?: string;
  dev: string;
  metric?: number;
}

export type ProbeAnswer = 'ok' | 'fail' | { rttMs: number };

export class MonitorSandbox {
  readonly dir = mkdtempSync(join(tmpdir(), 'lbprov-monitor-'));
  readonly etc = join(this.dir, 'etc');
  readonly run = join(this.dir, 'run');
  readonly logDir = join(this.dir, 'log');
  readonly conditions = join(this.dir, 'nf_condition');
  readonly data = join(this.dir, 'data');
  readonly stubs = join(this.dir, 'stubs');
  readonly desired: Resource[];
  private child: ChildProcess | null = null;
  private stderr = '';
  private syncs = 0;
  private uptimeCs = 100_000;
  private readonly seqs = new Map<string, number>();

  constructor(
    readonly gateway: GatewaySpec,
    facts: HostFacts = factsFor(gateway),
  ) {
    for (const d of [this.etc, this.run, this.logDir, this.conditions, this.data, this.stubs]) mkdirSync(d, { recursive: true });
    this.desired = renderDesiredState(gateway, playbook, templates, facts);
    for (const name of ['monitor.sh', 'monitor.conf', 'balance.variants']) writeFileSync(join(this.etc, name), this.file(`/etc/lbprov/${name}`).content);
    for (const [name, body] of Object.entries(STUBS)) {
      writeFileSync(join(this.stubs, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(this.stubs, name), 0o755);
    }
    this.setClock(this.uptimeCs);
    writeFileSync(join(this.data, 'kernel'), '');
    this.setKernel(
      gateway.links.map((l, i) => ({ name: l.interface, index: i + 2, address: `203.0.113.${8 * i + 2}`, prefixLength: 29 })),
      [{ via: '203.0.113.1', dev: 'wan1' }],
    );
  }

  file(path: string): FileResource {
    const f = this.desired.find((r): r is FileResource => r.kind === 'file' && r.path === path);
    if (!f) throw new Error(`the playbook renders no ${path}`);
    return f;
  }

  /** Seconds of uptime the monitor reads next. */
  get seconds(): number {
    return this.uptimeCs / 100;
  }

  setClock(cs: number): void {
    this.uptimeCs = cs;
    writeFileSync(join(this.data, 'uptime'), `${Math.floor(cs / 100)}.${String(cs % 100).padStart(2, '0')} 1.00\n`);
  }

  advance(seconds: number): void {
    this.setClock(this.uptimeCs + Math.round(seconds * 100));
  }

  /** Replaces the interfaces, addresses and main-table default routes; keeps the tables and rules. */
  setKernel(interfaces: KernelInterface[], mainDefaults: KernelRoute[]): void {
    const kept = this.kernelLines().filter((l) => / table \d+( |$)/.test(l) || /^\d+:\t/.test(l));
    const lines = [
      ...interfaces.map((i) => `${i.index}: ${i.name}: <BROADCAST,MULTICAST${i.up === false ? '' : ',UP,LOWER_UP'}> mtu 1500 qdisc noqueue state UP`),
      ...interfaces
        .filter((i) => i.address)
        .map((i) => `${i.index}: ${i.name}    inet ${i.peer ? `${i.address} peer ${i.peer}/32` : `${i.address}/${i.prefixLength ?? 24}`} scope 0 ${i.name}\\       valid_lft forever`),
      ...mainDefaults.map((r) => `default${r.via ? ` via ${r.via}` : ''} dev ${r.dev}${r.metric ? ` metric ${r.metric}` : ''} `),
      ...kept,
    ];
    writeFileSync(join(this.data, 'kernel'), lines.join('\n') + '\n');
  }

  kernelLines(): string[] {
    const p = join(this.data, 'kernel');
    return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** Table T's default route as the monitor left it ("default via ... dev ...", "unreachable default"), or ''. */
  tableRoute(table: number): string {
    const line = this.kernelLines().find((l) => new RegExp(` table ${table}( |$)`).test(l)) ?? '';
    return line.replace(` table ${table}`, '').trim();
  }

  /** The `from <address>` of the rule at `priority`, or ''. */
  ruleFrom(priority: number): string {
    const line = this.kernelLines().find((l) => l.startsWith(`${priority}:\t`)) ?? '';
    return /^\d+:\tfrom (\S+)/.exec(line)?.[1] ?? '';
  }

  writeLease(iface: string, address: string, router: string): void {
    mkdirSync(join(this.run, 'dhcp'), { recursive: true });
    writeFileSync(join(this.run, 'dhcp', iface), `address=${address}\nrouter=${router}\nreason=RENEW\n`);
  }

  writeState(lines: string[]): void {
    writeFileSync(join(this.run, 'state'), lines.join('\n') + '\n');
  }

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      PATH: `${this.stubs}:/usr/bin:/bin`,
      DATA: this.data,
      LBPROV_ETC: this.etc,
      LBPROV_RUN: this.run,
      LBPROV_LOG_DIR: this.logDir,
      LBPROV_CONDITION_DIR: this.conditions,
      LBPROV_UPTIME: join(this.data, 'uptime'),
      ...extra,
    };
  }

  /** `monitor.sh run` as systemd runs it, with no tick of its own: the test sends every "@t". */
  async start(): Promise<Record<string, string>> {
    this.child = spawn('sh', [join(this.etc, 'monitor.sh'), 'run'], { env: this.env({ LBPROV_SUPERVISOR: 'systemd', LBPROV_TICK: '0' }), stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    await waitFor(() => `the monitor to start (${this.stderr})`, () => existsSync(join(this.run, 'monitor.started')));
    return this.state();
  }

  /** Writes lines to the monitor's FIFO, then waits until it has handled them. */
  async send(...lines: string[]): Promise<Record<string, string>> {
    const n = ++this.syncs;
    appendFileSync(join(this.run, 'monitor.fifo'), [...lines, `@sync ${n}`].join('\n') + '\n');
    await waitFor(() => `the monitor to handle sync ${n} (${this.stderr})`, () => this.state().sync === String(n));
    return this.state();
  }

  /** One probe result per target of every link named, `seconds` after the last. */
  async round(answers: Record<string, ProbeAnswer>, seconds = 1): Promise<Record<string, string>> {
    this.advance(seconds);
    const state = this.state();
    const lines: string[] = [];
    for (const [name, answer] of Object.entries(answers)) {
      const i = this.gateway.links.findIndex((l) => l.name === name);
      if (i < 0) throw new Error(`no link ${name}`);
      const targets = this.gateway.links[i]!.probes.length || 1;
      for (let t = 1; t <= targets; t++) lines.push(this.probeLine(i + 1, t, state[`link.${name}.prober`] ?? '0', answer));
    }
    return this.send(...lines);
  }

  probeLine(link: number, target: number, generation: string, answer: ProbeAnswer): string {
    const key = `${link}.${target}.${generation}`;
    const seq = (this.seqs.get(key) ?? 0) + 1;
    this.seqs.set(key, seq);
    const text = answer === 'fail' ? `no answer yet for icmp_seq=${seq}` : `64 bytes from 198.51.100.1: icmp_seq=${seq} ttl=64 time=${answer === 'ok' ? '3.4' : answer.rttMs} ms`;
    return `@p ${link} ${target} ${generation} ${text}`;
  }

  async tick(seconds = 1): Promise<Record<string, string>> {
    this.advance(seconds);
    return this.send('@t');
  }

  /** A line as `ip monitor` prints one: the monitor reads the kernel again (0.2 s after its last read). */
  async kernelEvent(): Promise<Record<string, string>> {
    this.advance(0.3);
    return this.send('2: wan1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500');
  }

  state(): Record<string, string> {
    const state: Record<string, string> = {};
    const p = join(this.run, 'state');
    for (const line of existsSync(p) ? readFileSync(p, 'utf8').split('\n') : []) {
      const i = line.indexOf('=');
      if (i > 0) state[line.slice(0, i)] = line.slice(i + 1);
    }
    return state;
  }

  /** Each nft or iptables-restore call: its arguments, stdin and the uptime seconds it ran at. */
  calls(): { t: number; args: string; payload: string }[] {
    return this.read(join(this.data, 'swaps'))
      .split(/^@@ t=/m)
      .filter((b) => b !== '')
      .map((b) => {
        const head = b.slice(0, b.indexOf('\n'));
        return { t: Number(head.split(' ')[0]), args: head.split(' ').slice(2).join(' '), payload: b.slice(b.indexOf('\n') + 1) };
      });
  }

  /** The balancing swaps among them (`nft -f -` / iptables-restore with a payload). */
  swaps(): { t: number; payload: string }[] {
    return this.calls().filter((c) => c.payload !== '');
  }

  /** Every ping started, as its arguments. */
  pings(): string[] {
    return this.read(join(this.data, 'pings')).split('\n').filter(Boolean);
  }

  /** Every conntrack call: "<uptime> <arguments>". */
  conntrack(): string[] {
    return this.read(join(this.data, 'conntrack')).split('\n').filter(Boolean);
  }

  log(): string {
    return this.read(join(this.logDir, 'monitor.log'));
  }

  read(p: string): string {
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  /** monitor.sh start|stop|restart with the real clock and its own tick. */
  async control(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    // execFile resolves only once stdout and stderr close: a daemon holding them would hang here.
    return promisify(execFile)('sh', [join(this.etc, 'monitor.sh'), ...args], { env: this.env({ LBPROV_UPTIME: '/proc/uptime' }), timeout: 10_000 });
  }

  pidFrom(name: string): number | null {
    const p = join(this.run, name);
    const text = existsSync(p) ? readFileSync(p, 'utf8').trim() : '';
    return /^\d+$/.test(text) ? Number(text) : null;
  }

  /** Stops what this sandbox started (the worker takes its children with it) and removes its folder. */
  async remove(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      // The worker handles TERM between lines: give it one.
      if (existsSync(join(this.run, 'monitor.fifo'))) appendFileSync(join(this.run, 'monitor.fifo'), '@t\n');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    for (const pidfile of ['monitor.pid', 'monitor.worker.pid']) {
      const pid = this.pidFrom(pidfile);
      if (alive(pid)) process.kill(pid!, 'SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Running, not a zombie: a daemon whose parent exited may wait unreaped where PID 1 does not reap. */
export function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    return !/^\d+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export async function waitFor<T>(what: string | (() => string), probe: () => T | null | undefined | false, timeoutMs = 8_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
