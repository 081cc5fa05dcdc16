/**
 * Quote one word for a POSIX shell: the result always parses back to exactly `s`.
 * Single quotes keep everything literal (newlines, `$`, backticks, `\`); an embedded `'` is
 * closed, emitted as `\'`, and reopened.
 */
export function shellQuote(s: string): string {
  if (s.includes('\0')) {
    // No shell word can carry NUL: argv strings end at it.
    throw new TypeError('shellQuote: NUL byte cannot be passed through a shell');
  }
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A payload on a command's stdin: printf is a builtin and shellQuote keeps any text literal. */
export function pipeInto(payload: string, command: string): string {
  return `printf '%s' ${shellQuote(payload)} | ${command}`;
}
