/** Plans for people: a coloured unified diff per resource and a summary line per gateway. */
import { structuredPatch } from 'diff';
import pc from 'picocolors';
import type { HostPlan } from '../model/plan.js';
import { summarize } from '../model/plan.js';
import { ACTION_SYMBOLS, type ResourceChange } from '../model/changes.js';
import { resourceLines } from '../model/resources.js';

export type Colours = Pick<typeof pc, 'green' | 'red' | 'yellow' | 'cyan' | 'bold' | 'dim'>;

export const plainColours: Colours = { green: String, red: String, yellow: String, cyan: String, bold: String, dim: String };

/** Colour only for a terminal, and never when NO_COLOR is set. */
export function coloursFor(stream: NodeJS.WriteStream): Colours {
  return stream.isTTY && !process.env.NO_COLOR ? pc.createColors(true) : plainColours;
}

const LONG_FILE = 40;
const FILE_HEAD = 12;

export function formatChange(change: ResourceChange, c: Colours): string[] {
  const colour = change.action === 'create' ? c.green : change.action === 'delete' ? c.red : c.yellow;
  const header = colour(`  ${ACTION_SYMBOLS[change.action]} ${change.id}`);
  const before = change.before ? resourceLines(change.before) : [];
  const after = change.after ? resourceLines(change.after) : [];
  const body: string[] = [];
  if (change.action === 'create' || change.action === 'delete') {
    const lines = change.action === 'create' ? after : before;
    // A whole new script is read in an editor, not in a plan: show its head and its size.
    const shown = change.kind === 'file' && lines.length > LONG_FILE ? lines.slice(0, FILE_HEAD) : lines;
    for (const line of shown) body.push(colour(`      ${ACTION_SYMBOLS[change.action]} ${line}`));
    if (shown.length < lines.length) body.push(c.dim(`      … ${lines.length - shown.length} more lines (plan --json has them all)`));
  } else {
    const patch = structuredPatch('current', 'desired', before.join('\n') + '\n', after.join('\n') + '\n', '', '', { context: 2 });
    for (const hunk of patch.hunks) {
      body.push(c.cyan(`      @@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`));
      for (const line of hunk.lines) {
        const text = `      ${line[0]} ${line.slice(1)}`;
        body.push(line[0] === '+' ? c.green(text) : line[0] === '-' ? c.red(text) : c.dim(text));
      }
    }
  }
  return [header, ...body];
}

export function summaryLine(plan: HostPlan): string {
  const s = summarize(plan);
  return `${plan.gateway}: ${s.add} to add, ${s.change} to change, ${s.remove} to remove`;
}
