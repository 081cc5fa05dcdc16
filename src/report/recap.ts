/** The end-of-run recap: one line per gateway and the totals, like Ansible's PLAY RECAP. */
import type { HostResult, HostStatus } from '../runner/fleet.js';
import { summarize } from '../model/plan.js';
import type { Colours } from './plan-text.js';

const ORDER: HostStatus[] = ['ok', 'changed', 'failed', 'unreachable', 'not-started'];

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

export function formatRecap(results: readonly HostResult[], c: Colours): string {
  const colour = (s: HostStatus) => (s === 'ok' ? c.green : s === 'changed' ? c.yellow : s === 'not-started' ? c.dim : c.red);
  const width = Math.max(8, ...results.map((r) => r.gateway.length));
  const lines = [c.bold('RECAP')];
  for (const r of results) {
    let detail = '';
    if (r.error) detail = `  ${r.error.message}${r.error.stderr ? ` (${r.error.stderr.split('\n')[0]})` : ''}`;
    else if (r.plan && r.plan.changes.length > 0) {
      const s = summarize(r.plan);
      detail = `  ${s.add} to add, ${s.change} to change, ${s.remove} to remove`;
    }
    const retried = r.connectRetries ? `  ${c.dim(`(${r.connectRetries} connect ${plural(r.connectRetries, 'retry', 'retries')})`)}` : '';
    lines.push(`${r.gateway.padEnd(width)}  ${colour(r.status)(r.status.padEnd(11))}${detail}${retried}`);
  }
  const totals = ORDER.map((s) => `${s}=${results.filter((r) => r.status === s).length}`).join(' ');
  const retries = results.reduce((n, r) => n + (r.connectRetries ?? 0), 0);
  const retriedOn = results.filter((r) => r.connectRetries).length;
  lines.push(c.bold(`total ${results.length}: ${totals}${retries > 0 ? ` connect-retries=${retries} (${retriedOn} ${plural(retriedOn, 'gateway', 'gateways')})` : ''}`));
  return lines.join('\n');
}
