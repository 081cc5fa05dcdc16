/**
 * Progress of a fleet run, readable at 500 gateways: on a terminal ONE status line updated in
 * place (counts, the wave, the slowest gateways still running) with failures printed above it; in
 * logs one plain line per finished gateway and per wave; with --json nothing (stdout carries
 * results, and CI parses it). Everything goes to stderr.
 */
import type { Ora } from 'ora';
import type { HostResult, HostStatus } from '../runner/fleet.js';
import type { RolloutEvent } from '../runner/rollout.js';
import { plainColours, type Colours } from './plan-text.js';

export type ProgressMode = 'live' | 'lines' | 'silent';

export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Default: silent with json, live on a terminal (outside CI), lines otherwise. */
  mode?: ProgressMode;
  json?: boolean;
  colours?: Colours;
  /** Clock in ms, for tests. */
  now?: () => number;
  /** How often the live line refreshes elapsed times. */
  refreshMs?: number;
  /** Running gateways named on the status line. */
  slowest?: number;
}

type OraFactory = typeof import('ora').default;
let oraFactory: OraFactory | undefined;

/** ora and its dependencies take ~40 ms to load: only a live terminal pays for them. */
export async function loadOra(): Promise<OraFactory> {
  oraFactory ??= (await import('ora')).default;
  return oraFactory;
}

/**
 * A terminal a line can be redrawn in: a TTY that reports its width (a bare
 * pty or some serial consoles report none) and is not TERM=dumb.
 */
export function hasLiveTerminal(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (stream.columns ?? 0) > 0 && env.TERM !== 'dumb';
}

export function progressMode(stream: NodeJS.WriteStream, json: boolean, env: NodeJS.ProcessEnv = process.env): ProgressMode {
  if (json) return 'silent';
  return hasLiveTerminal(stream, env) && !env.CI ? 'live' : 'lines';
}

type Counted = Exclude<HostStatus, 'not-started'>;

export class FleetProgress {
  readonly mode: ProgressMode;
  private readonly stream: NodeJS.WriteStream;
  private readonly c: Colours;
  private readonly now: () => number;
  private readonly refreshMs: number;
  private readonly slowestShown: number;
  private total = 0;
  private finished = 0;
  private readonly counts: Record<Counted, number> = { ok: 0, changed: 0, failed: 0, unreachable: 0 };
  private currentWave: { index: number; count: number } | null = null;
  /** Gateway -> start time; insertion order is start order, so the oldest come first. */
  private readonly running = new Map<string, number>();
  private spinner: Ora | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.mode = options.mode ?? progressMode(this.stream, !!options.json);
    this.c = options.colours ?? plainColours;
    this.now = options.now ?? (() => performance.now());
    this.refreshMs = options.refreshMs ?? 1000;
    this.slowestShown = options.slowest ?? 3;
  }

  async start(total: number): Promise<this> {
    this.total = total;
    if (this.mode === 'live') {
      const ora = await loadOra();
      this.spinner = ora({ text: this.statusText(), stream: this.stream, isEnabled: true, discardStdin: false }).start();
      this.timer = setInterval(() => this.refresh(), this.refreshMs);
      this.timer.unref();
    }
    return this;
  }

  /** A wave begins: `index` from 1 of `count`. */
  wave(index: number, count: number, hosts: readonly string[]): void {
    this.currentWave = { index, count };
    this.line(this.c.bold(`wave ${index}/${count}: ${hosts.length} gateway(s)`));
    this.refresh();
  }

  hostStarted(name: string): void {
    this.running.set(name, this.now());
    this.refresh();
  }

  hostDone(result: HostResult): void {
    this.running.delete(result.gateway);
    if (result.status === 'not-started') return;
    this.finished++;
    this.counts[result.status]++;
    const failed = result.status === 'failed' || result.status === 'unreachable';
    // On a terminal only failures earn a line of their own; successes are counted in the status line.
    if (this.mode === 'lines' || failed) this.line(this.doneLine(result));
    this.refresh();
  }

  /** Any other line worth keeping (a pause, the stop of a rollout). */
  note(text: string): void {
    this.line(text);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.spinner?.stop();
    this.spinner = null;
  }

  /** Feeds runRollout's events straight in. */
  handle(event: RolloutEvent): void {
    switch (event.type) {
      case 'wave-start':
        return this.wave(event.wave, event.waves, event.gateways);
      case 'host-start':
        return this.hostStarted(event.gateway);
      case 'host-done':
        return this.hostDone(event.result);
      case 'pause':
        return this.note(`pausing ${formatSeconds(event.ms)} before the next wave`);
      case 'stopped':
        return this.note(this.c.red(event.stop.message));
      case 'wave-done':
        return;
    }
  }

  /** The live status line: "wave 2/3 · 37/500 done · 30 changed · 2 failed · running 20, slowest: gw-17 12s, ...". */
  statusText(): string {
    const parts: string[] = [];
    if (this.currentWave) parts.push(`wave ${this.currentWave.index}/${this.currentWave.count}`);
    parts.push(`${this.finished}/${this.total} done`);
    parts.push(`${this.counts.ok} ok`, `${this.counts.changed} changed`);
    const bad = this.counts.failed + this.counts.unreachable;
    if (bad > 0) parts.push(this.c.red(`${this.counts.failed} failed, ${this.counts.unreachable} unreachable`));
    if (this.running.size > 0) {
      const now = this.now();
      const slowest = [...this.running.entries()]
        .slice(0, this.slowestShown)
        .map(([name, since]) => `${name} ${Math.floor((now - since) / 1000)}s`);
      parts.push(`running ${this.running.size}, slowest: ${slowest.join(', ')}`);
    }
    return parts.join(' · ');
  }

  private doneLine(result: HostResult): string {
    const position = `[${this.finished}/${this.total}]`;
    const time = formatSeconds(result.durationMs);
    const colour = result.status === 'ok' ? this.c.green : result.status === 'changed' ? this.c.yellow : this.c.red;
    const why = result.error ? `: ${result.error.message}` : '';
    return `${position} ${result.gateway} ${colour(result.status)} (${time})${why}`;
  }

  private refresh(): void {
    if (!this.spinner) return;
    const columns = this.stream.columns ?? 80;
    // ora redraws by counting wrapped lines; one line that never wraps stays in place at any width.
    this.spinner.text = truncate(this.statusText(), Math.max(20, columns - 3));
  }

  private line(text: string): void {
    if (this.mode === 'silent') return;
    if (this.spinner) {
      this.spinner.clear();
      this.stream.write(`${text}\n`);
      this.spinner.render();
    } else {
      this.stream.write(`${text}\n`);
    }
  }
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Cuts to `width` visible characters; a line that must be cut loses its colours rather than half a code. */
export function truncate(text: string, width: number): string {
  const visible = text.replace(/\u001b\[[0-9;]*m/g, '');
  if (visible.length <= width) return text;
  return `${visible.slice(0, width - 1)}…`;
}
