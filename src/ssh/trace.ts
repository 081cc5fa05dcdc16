import { appendFileSync } from 'node:fs';

/** One command sent to a gateway. Never carries stdin: that is where file contents travel. */
export interface CommandTraceEntry {
  host: string;
  command: string;
  mutating: boolean;
  /** ISO 8601. */
  startedAt: string;
  durationMs: number;
  /** Exit code; null when the command was killed, timed out or the connection was lost. */
  code: number | null;
}

export interface CommandTrace {
  record(entry: CommandTraceEntry): void;
}

/** Appends one JSON line per command to `file`; synchronous so lines from parallel hosts never interleave. */
export function fileTrace(file: string): CommandTrace {
  return {
    record(entry) {
      appendFileSync(file, `${JSON.stringify(entry)}\n`);
    },
  };
}

/** The trace named by LBPROV_TRACE, if set (tests use it to count round trips and mutations). */
export function traceFromEnv(env: NodeJS.ProcessEnv = process.env): CommandTrace | undefined {
  const file = env['LBPROV_TRACE'];
  return file ? fileTrace(file) : undefined;
}
