/**
 * Runs the real monitor script (rendered from the shipped templates) under sh with a
 * PATH of recording stubs: `ping` answers from a per-probe script of ok/fail, `date`
 * and `sleep` share a fake clock (so a minute of probing takes a fraction of a second),
 * `iptables-restore`, `ip`, `conntrack` and `logger` record what they are asked.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

export const CLOCK_START = 1000;

export const playbook = loadPlaybook(join(PACKAGE_ROOT, 'playbooks', 'balancer.yml'));
export const templates = loadTemplateSet(playbook.templatesDir);

/** A gateway spec with the given weights and monitor settings on every link. */
export function monitoredGateway(weights: number[], monitor: Partial<MonitorSettings> = {}): GatewaySpec {
  const gw = gatewaySpec(weights);
  const settings: MonitorSettings = { intervalS: 1, timeoutS: 1, reliability: 1, down: 3, up: 2, ...monitor };
  return { ...gw, links: gw.links.map((l) => ({ ...l, monitor: { ...settings } })) };
}

const STUBS: Record<string, string> = {
  // The fake clock: `date +%s` reads it, `sleep N` advances it and ends the run at data/stop.
  date: `case "$1" in +%s) cat "$DATA/clock" ;; *) echo "T$(cat "$DATA/clock")" ;; esac`,
  sleep: [
    'c=$(( $(cat "$DATA/clock") + ${1%.*} )); echo "$c" >"$DATA/clock"',
    'if [ "$c" -ge "$(cat "$DATA/stop")" ]; then kill -TERM "$PPID"; fi',
  ].join('\n'),
  ping: [
    'record ping "$@"',
    'for a; do addr=$a; done',
    'f="$DATA/answers/$addr"',
    'answer=$(head -n 1 "$f")',
    // The last answer repeats forever.
    'if [ "$(wc -l <"$f")" -gt 1 ]; then tail -n +2 "$f" >"$f.$$" && mv "$f.$$" "$f"; fi',
    'if [ "$answer" = ok ]; then echo "64 bytes from $addr: icmp_seq=1 ttl=64 time=3.4 ms"; exit 0; fi',
    'exit 1',
  ].join('\n'),
  'iptables-restore': ['record iptables-restore "$@"', '{ echo "@@ t=$(cat "$DATA/clock")"; cat; } >>"$DATA/restores"'].join('\n'),
  ip: [
    'record ip "$@"',
    'case "$*" in',
    '  "-4 route show table main default") cat "$DATA/main-default" ;;',
    '  "route replace default via "*) shift 3; echo "default $*" >"$DATA/main-default" ;;',
    'esac',
  ].join('\n'),
  conntrack: ['record conntrack "$@"', 'echo "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted." >&2'].join('\n'),
  logger: 'record logger "$@"',
};

export interface MonitorRun {
  code: number | null;
  /** "t=<clock> <command> <args>" per stub call. */
  calls: string[];
  /** Each iptables-restore payload with the fake time it was applied at. */
  restores: { t: number; payload: string }[];
  state: Record<string, string>;
  log: string;
  mainDefault: string;
}

export class MonitorSandbox {
  readonly dir = mkdtempSync(join(tmpdir(), 'lbprov-monitor-'));
  readonly etc = join(this.dir, 'etc');
  readonly run = join(this.dir, 'run');
  readonly logDir = join(this.dir, 'log');
  readonly conditions = join(this.dir, 'nf_condition');
  readonly data = join(this.dir, 'data');
  readonly stubs = join(this.dir, 'stubs');
  readonly desired: Resource[];

  constructor(
    readonly gateway: GatewaySpec,
    facts: HostFacts = factsFor(gateway),
  ) {
    for (const d of [this.etc, this.run, this.logDir, this.conditions, this.data, join(this.data, 'answers'), this.stubs]) mkdirSync(d, { recursive: true });
    this.desired = renderDesiredState(gateway, playbook, templates, facts);
    for (const name of ['monitor.sh', 'monitor.conf', 'balance.variants']) {
      writeFileSync(join(this.etc, name), this.file(`/etc/lbprov/${name}`).content);
    }
    const record = 'record() { c=$1; shift; echo "t=$(cat "$DATA/clock") $c $*" >>"$DATA/calls"; }';
    for (const [name, body] of Object.entries(STUBS)) {
      writeFileSync(join(this.stubs, name), `#!/bin/sh\n${record}\n${body}\n`);
      chmodSync(join(this.stubs, name), 0o755);
    }
    writeFileSync(join(this.data, 'clock'), `${CLOCK_START}\n`);
    writeFileSync(join(this.data, 'calls'), '');
    this.setMainDefault(`default via ${gateway.links[0]!.gateway} dev ${gateway.links[0]!.interface}`);
  }

  file(path: string): FileResource {
    const f = this.desired.find((r): r is FileResource => r.kind === 'file' && r.path === path);
    if (!f) throw new Error(`the playbook renders no ${path}`);
    return f;
  }

  /** Answers of one probe target, one per probe round: 'ok' or 'fail'; the last one repeats. */
  answers(probe: string, answers: ('ok' | 'fail')[]): void {
    writeFileSync(join(this.data, 'answers', probe), answers.join('\n') + '\n');
  }

  setMainDefault(route: string): void {
    writeFileSync(join(this.data, 'main-default'), `${route}\n`);
  }

  writeState(lines: string[]): void {
    writeFileSync(join(this.run, 'state'), lines.join('\n') + '\n');
  }

  env(): NodeJS.ProcessEnv {
    return {
      PATH: `${this.stubs}:/usr/bin:/bin`,
      DATA: this.data,
      LBPROV_ETC: this.etc,
      LBPROV_RUN: this.run,
      LBPROV_LOG_DIR: this.logDir,
      LBPROV_CONDITION_DIR: this.conditions,
    };
  }

  /** `monitor.sh run` for `seconds` of fake time; resolves when the clock runs out. */
  async runFor(seconds: number): Promise<MonitorRun> {
    writeFileSync(join(this.data, 'stop'), `${CLOCK_START + seconds}\n`);
    const child = spawn('sh', [join(this.etc, 'monitor.sh'), 'run'], { env: this.env(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`monitor.sh run did not finish: ${stderr}`));
      }, 15_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    return this.result(code);
  }

  result(code: number | null): MonitorRun {
    const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
    const restores = read(join(this.data, 'restores'))
      .split(/^@@ t=/m)
      .filter((b) => b !== '')
      .map((b) => ({ t: Number(b.slice(0, b.indexOf('\n'))), payload: b.slice(b.indexOf('\n') + 1) }));
    const state: Record<string, string> = {};
    for (const line of read(join(this.run, 'state')).split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) state[line.slice(0, i)] = line.slice(i + 1);
    }
    return {
      code,
      calls: read(join(this.data, 'calls')).split('\n').filter(Boolean),
      restores,
      state,
      log: read(join(this.logDir, 'monitor.log')),
      mainDefault: read(join(this.data, 'main-default')).trim(),
    };
  }

  /** monitor.sh start|stop|restart with the real clock (only ping and the firewall tools are stubs). */
  async control(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    const stubs = join(this.dir, 'control-stubs');
    mkdirSync(stubs, { recursive: true });
    for (const name of ['ping', 'iptables-restore', 'ip', 'conntrack', 'logger']) {
      writeFileSync(join(stubs, name), `#!/bin/sh\nrecord() { :; }\n${STUBS[name]}\n`);
      chmodSync(join(stubs, name), 0o755);
    }
    // execFile resolves only once stdout and stderr close: a daemon holding them would hang here.
    return promisify(execFile)('sh', [join(this.etc, 'monitor.sh'), ...args], { env: { ...this.env(), PATH: `${stubs}:/usr/bin:/bin` }, timeout: 10_000 });
  }

  pidFrom(name: string): number | null {
    const p = join(this.run, name);
    const text = existsSync(p) ? readFileSync(p, 'utf8').trim() : '';
    return /^\d+$/.test(text) ? Number(text) : null;
  }

  remove(): void {
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

export async function waitFor<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 8_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
