/** The controller's run log: one JSON line per run, what was done where and how it ended. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { HostResult } from './fleet.js';

export function runLogPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LBPROV_RUN_LOG) return env.LBPROV_RUN_LOG;
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'lbprov', 'runs.jsonl');
}

export interface RunRecord {
  run: string;
  command: string;
  inventory: string;
  startedAt: string;
  finishedAt: string;
  results: HostResult[];
}

/** Best effort: a full disk on the controller must not turn a good apply into a failure. */
export function appendRunLog(record: RunRecord, path = runLogPath()): string | null {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const results = record.results.map((r) => ({
      gateway: r.gateway,
      status: r.status,
      changes: r.plan?.changes.map((c) => `${c.action} ${c.id}`) ?? [],
      ...(r.error ? { error: r.error.message } : {}),
      durationMs: Math.round(r.durationMs),
    }));
    appendFileSync(path, JSON.stringify({ ...record, results }) + '\n');
    return path;
  } catch {
    return null;
  }
}
