/** Lines of a rendered template with their 1-based numbers, blank lines and # comments dropped. */
export function meaningfulLines(text: string): { line: string; n: number }[] {
  return text
    .split('\n')
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    .filter((l) => l.line !== '' && !l.line.startsWith('#'));
}
