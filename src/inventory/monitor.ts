/** A link's monitor settings: its own keys over `defaults.monitor` over the built-in defaults. */
import type { FlapDamping, MonitorSettings, QualityThresholds } from '../model/inventory.js';
import { FLAP_DEFAULTS, MONITOR_DEFAULTS, type RawMonitor } from './schema.js';
import { formatKey, type YamlPath } from './yaml-source.js';

export interface MonitorProblem {
  path: YamlPath;
  problem: string;
}

/** The link's value of `key`, else the defaults', and the key it came from (undefined: built in). */
function sourced<K extends keyof RawMonitor>(key: K, link: RawMonitor | undefined, defaults: RawMonitor | undefined, linkPath: YamlPath): { value: RawMonitor[K]; path?: YamlPath } {
  if (link?.[key] !== undefined) return { value: link[key], path: [...linkPath, key] };
  if (defaults?.[key] !== undefined) return { value: defaults[key], path: ['defaults', 'monitor', key] };
  return { value: undefined };
}

export function monitorSettings(link: RawMonitor | undefined, defaults: RawMonitor | undefined, linkPath: YamlPath, probeCount: number, problems: MonitorProblem[]): MonitorSettings {
  const get = <K extends keyof RawMonitor>(key: K) => sourced(key, link, defaults, linkPath);
  const number = (key: 'interval' | 'timeout' | 'reliability' | 'down' | 'up' | 'window') => {
    const s = get(key);
    return { value: (s.value as number | undefined) ?? MONITOR_DEFAULTS[key], path: s.path };
  };
  const interval = number('interval');
  const timeoutSet = get('timeout');
  // Unset, the timeout is 1 s or the interval when that is shorter (a 0.2 s interval answers in 0.2 s).
  const timeout = { value: (timeoutSet.value as number | undefined) ?? Math.min(MONITOR_DEFAULTS.timeout, interval.value), path: timeoutSet.path };
  const reliability = number('reliability');
  if (timeout.value > interval.value) {
    problems.push({ path: timeout.path ?? interval.path ?? linkPath, problem: `timeout ${timeout.value}s is longer than the interval ${interval.value}s` });
  }
  if (reliability.value > probeCount) {
    problems.push({ path: reliability.path ?? linkPath, problem: `reliability ${reliability.value} needs more probes than the ${probeCount} of ${formatKey(linkPath.slice(0, -1))}` });
  }
  const pair = (key: 'latency_ms' | 'loss_pct'): QualityThresholds | null => {
    const s = get(key);
    const v = s.value as QualityThresholds | null | undefined;
    if (!v) return null;
    if (v.up > v.down) problems.push({ path: [...(s.path ?? linkPath), 'up'], problem: `must not be above down (${v.down}): between the two the state does not change` });
    return { down: v.down, up: v.up };
  };
  const flapSet = get('flap');
  const flapRaw = flapSet.value === undefined ? FLAP_DEFAULTS : flapSet.value;
  const flap: FlapDamping | null = flapRaw ? { changes: flapRaw.changes, withinS: flapRaw.minutes * 60, holdS: flapRaw.hold } : null;
  return {
    intervalS: interval.value,
    timeoutS: timeout.value,
    reliability: reliability.value,
    down: number('down').value,
    up: number('up').value,
    latencyMs: pair('latency_ms'),
    lossPct: pair('loss_pct'),
    window: number('window').value,
    flap,
  };
}
