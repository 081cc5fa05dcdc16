/**
 * What a command pipes into a tool: `printf '%s' WORD | tool`, WORD one shell-quoted word
 * (see pipeInto). Returned unquoted, so a test reads exactly the text the tool would read.
 */
const WORD = String.raw`(?:'[^']*'|\\')+|[A-Za-z0-9_@%+=:,./-]+`;

export interface StdinPayload {
  tool: string;
  text: string;
}

export function stdinPayloads(command: string): StdinPayload[] {
  return [...command.matchAll(new RegExp(String.raw`printf '%s' (${WORD}) \| ([a-z-]+)`, 'g'))].map((m) => ({ tool: m[2]!, text: unquoteWord(m[1]!) }));
}

function unquoteWord(word: string): string {
  if (!/^['\\]/.test(word)) return word;
  return [...word.matchAll(/'([^']*)'|\\(')/g)].map((m) => m[1] ?? m[2]).join('');
}
