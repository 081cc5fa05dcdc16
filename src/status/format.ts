/** `lbprov status` as text: one block per gateway, one line per link. */
import type { Colours } from '../report/plan-text.js';
import type { GatewayStatus } from './monitor-status.js';

function ago(seconds: number): string {
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ago`;
}

/** "eth1 198.51.100.2 via 198.51.100.1 (DHCP lease)", or why the link is not ready. */
function pathOf(l: GatewayStatus['links'][number]): string {
  if (l.ready === false) return `${l.interface}: not ready: ${l.reason || 'unknown'}`;
  const via = l.nextHop ? ` via ${l.nextHop}` : l.kind === 'none' ? ' point-to-point' : '';
  const learned = l.nextHopSource === 'dhcp-lease' ? ' (DHCP lease)' : l.nextHopSource === 'main-route' ? " (the DHCP client's default route)" : '';
  return `${l.interface} ${l.address ?? '-'}${via}${learned}`;
}

/** "rtt 3.4 ms (jitter 0.2 ms), loss 0 %, 2 changes in the last hour; held down until ...". */
function qualityOf(l: GatewayStatus['links'][number], nowS: number): string {
  const ms = (n: number | null) => (n === null ? '-' : `${n.toFixed(1)} ms`);
  const parts = [`rtt ${ms(l.rttMs)} (jitter ${ms(l.jitterMs)})`, `loss ${l.lossPct === null ? '-' : `${l.lossPct} %`}`, `${l.transitionsLastHour} change${l.transitionsLastHour === 1 ? '' : 's'} in the last hour`];
  if (l.heldUntil !== null && l.heldUntil > nowS) parts.push(`held down by flap damping for ${l.heldUntil - nowS}s more`);
  if (l.why) parts.push(`last change: ${l.why}`);
  return parts.join(', ');
}

export function formatGatewayStatus(s: GatewayStatus, c: Colours, nowS = Math.floor(Date.now() / 1000)): string {
  const lines: string[] = [];
  const monitor = !s.deployed
    ? c.yellow('no monitor deployed')
    : s.running
      ? c.green(`monitor running (pid ${s.pid}${s.workerPid !== null ? `, worker ${s.workerPid}` : ''})`)
      : c.red('monitor NOT running');
  const details = [
    s.mechanism ?? 'mechanism unknown',
    s.allDown ? c.red('all links down: balancing left as it was') : `balancing over ${s.balanced.join(', ') || '-'}`,
    ...(s.age !== null ? [`state written ${ago(s.age)}`] : []),
    ...(s.revision ? [`revision ${s.revision}`] : []),
  ];
  lines.push(`${c.bold(s.gateway)}: ${monitor}, ${details.join(', ')}`);
  const width = Math.max(...s.links.map((l) => l.name.length));
  for (const l of s.links) {
    const state = l.state === 'up' ? c.green('up      ') : l.state === 'degraded' ? c.yellow('degraded') : l.state === 'down' ? c.red('down    ') : c.dim('?       ');
    const since = l.since !== null ? `since ${new Date(l.since * 1000).toISOString().replace('.000Z', 'Z')} (${ago(Math.max(0, nowS - l.since))})` : 'since -';
    const connections = l.connections === null ? 'connections unknown' : `${l.connections} connection${l.connections === 1 ? '' : 's'}`;
    const tier = s.links.some((x) => x.tier !== 1) ? `  tier ${l.tier}` : '';
    const sticky = l.stickySources === null ? '' : `  ${l.stickySources} sticky source${l.stickySources === 1 ? '' : 's'}`;
    lines.push(`  ${l.name.padEnd(width)}  ${state}  ${since}  last ${l.last ?? '-'}  mark ${l.mark}  ${connections}${tier}${sticky}`);
    lines.push(`  ${' '.repeat(width)}  ${c.dim(pathOf(l))}`);
    lines.push(`  ${' '.repeat(width)}  ${c.dim(qualityOf(l, nowS))}`);
  }
  for (const a of s.audit) {
    const changes = a.changes === null ? '' : ` ${a.changes} change${a.changes === 1 ? '' : 's'}`;
    lines.push(c.dim(`  ${a.time}  ${a.result.padEnd(11)}${changes}  by ${a.by || '?'}${a.from ? ` from ${a.from}` : ''}  run ${a.run || '?'}`));
  }
  if (s.restarts !== null && s.restarts > 0) lines.push(c.yellow(`  systemd restarted the monitor ${s.restarts} time${s.restarts === 1 ? '' : 's'}`));
  if (s.events.length > 0) lines.push(c.dim(`  last events (${s.eventsFrom === 'journal' ? 'journalctl -u lbprov-monitor.service' : '/var/log/lbprov/monitor.log'}):`), ...s.events.map((e) => c.dim(`    ${e}`)));
  for (const e of s.errors) lines.push(c.red(`  error: ${e}`));
  for (const w of s.warnings) lines.push(c.yellow(`  warning: ${w}`));
  return lines.join('\n');
}
