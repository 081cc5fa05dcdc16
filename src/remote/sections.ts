/**
 * The one protocol of every script lbprov runs on a gateway that prints several things:
 * sections between marker lines that carry a random per-run token, ended by a `done` line.
 * A section's exit code travels in its end line; its stderr either follows it in the
 * output (errorFile) or goes to the script's stderr after a begin line of its own.
 * Nothing between markers is trusted: output that lacks the done line, or whose begin
 * lines do not pair with their end lines, is refused as truncated or forged.
 */
import { randomBytes } from 'node:crypto';
import { shellQuote } from './quote.js';

/** First lines of every script: a known locale and a PATH that has the admin tools. */
export const PREAMBLE = 'LC_ALL=C; export LC_ALL\nPATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH';

/** Each section's stderr is kept up to this many characters: enough for an error message. */
export const SECTION_STDERR_CHARS = 4096;

export function newMarker(): string {
  return randomBytes(8).toString('hex');
}

export interface SectionScriptOptions {
  marker: string;
  /**
   * Shell word naming a scratch file that collects each section's stderr into the output (an
   * apply's folder, whose stderr is not the connection's). Without one, sections write their
   * stderr to the script's own stderr after a marker line: no temporary file to make and remove.
   */
  errorFile?: string;
}

/**
 * `m=`, the `sec NAME COMMAND` function and the small `show FILE` (cat without a process).
 * `sec` leaves the section's exit code in $rc, so a script can choose its next sections by it.
 */
export function sectionPrelude(opts: SectionScriptOptions): string {
  const toFile = opts.errorFile !== undefined;
  const [before, redirect, after] = toFile
    ? ['', ' 2>"$e"', ` if [ -s "$e" ]; then printf "@@%s stderr %s\\n" "$m" "$1"; head -c ${SECTION_STDERR_CHARS} "$e"; printf "\\n@@%s endstderr %s\\n" "$m" "$1"; fi;`]
    : [' printf "@@%s begin %s\\n" "$m" "$1" >&2;', '', ''];
  return [
    `m=${opts.marker}`,
    ...(toFile ? [`e=${opts.errorFile}`] : []),
    'show() { [ -r "$1" ] || return 1; while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done < "$1"; }',
    // No subshell per section: on 100 gateways the forks alone cost a CPU-second.
    `sec() { printf "@@%s begin %s\\n" "$m" "$1";${before} { eval "$2"; } </dev/null${redirect}; rc=$?; printf "\\n@@%s end %s %s\\n" "$m" "$1" "$rc";${after} }`,
  ].join('\n');
}

/** One `sec` call. */
export function sectionCall(name: string, command: string): string {
  return `sec ${name} ${shellQuote(command)}`;
}

/** The last line of a script: without it the output was cut short, however complete its sections look. */
export const DONE_LINE = 'printf "@@%s done\\n" "$m"';

export interface Section {
  body: string;
  rc: number;
  stderr: string;
}

export class SectionProtocolError extends Error {
  override name = 'SectionProtocolError';
}

/**
 * The sections of one script's output. `stderr`: the script's own stderr when its sections wrote
 * there (no errorFile). Throws SectionProtocolError on output without its done line or with
 * begin lines that do not pair with end lines.
 */
export function readSections(output: string, marker: string, stderr = ''): Map<string, Section> {
  const sections = new Map<string, Section>();
  const re = new RegExp(`^@@${marker} begin (\\S+)\\n([\\s\\S]*?)\\n@@${marker} end \\1 (\\d+)$(?:\\n@@${marker} stderr \\1\\n([\\s\\S]*?)\\n@@${marker} endstderr \\1$)?`, 'gm');
  for (const m of output.matchAll(re)) {
    sections.set(m[1]!, { body: m[2]!, rc: Number(m[3]), stderr: m[4] ?? '' });
  }
  if (!new RegExp(`^@@${marker} done$`, 'm').test(output)) {
    throw new SectionProtocolError('output is truncated (the script did not get to its end)');
  }
  // Every begin must pair with its own end, once: a forged or unterminated marker means garbled output.
  const begins = output.match(new RegExp(`^@@${marker} begin `, 'gm'))?.length ?? 0;
  if (begins !== sections.size) {
    throw new SectionProtocolError(`output has ${begins} section starts for ${sections.size} sections (forged or garbled markers)`);
  }
  // In the stream, a section's stderr is what follows its begin line up to the next one.
  const parts = stderr.split(new RegExp(`^@@${marker} begin (\\S+)\\n`, 'm'));
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const section = sections.get(parts[i]!);
    const text = parts[i + 1]!.replace(/\n$/, '');
    if (section && text !== '') section.stderr = (section.stderr + text).slice(0, SECTION_STDERR_CHARS);
  }
  return sections;
}

/** The script's stderr without the section marker lines: what a person reads when the script failed. */
export function scriptStderr(stderr: string, marker: string): string {
  return stderr.replace(new RegExp(`^@@${marker} begin \\S+\\n?`, 'gm'), '').trim();
}

/** key=value lines; the value is trimmed. */
export function parseKeyValues(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of body.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** How a layer reads the sections it asked for. */
export interface SectionReader {
  /** The body of a section that must have succeeded; throws naming `what` otherwise. */
  body(name: string, what: string): string;
  /** A section as it came, or undefined when it did not run. */
  section(name: string): Section | undefined;
}
