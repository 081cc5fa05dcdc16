/**
 * `lbprov status`: the link monitor's view of one gateway, read in one round trip
 * by a small POSIX script and parsed by pure functions.
 */
import type { GatewaySpec } from '../model/inventory.js';
import { hex, linkMark } from '../model/ownership.js';
import { AUDIT_LOG, FIREWALL_RECORD_PATH, LOG_DIR, MONITOR_STATE_PATH, MONITOR_UNIT, serviceRunPath, serviceScriptPath } from '../model/paths.js';
import { FIREWALL_BACKENDS } from '../firewall/index.js';
import { isIpv4 } from '../model/net.js';
import { shellQuote } from '../remote/quote.js';
import { DONE_LINE, newMarker, parseKeyValues, PREAMBLE, readSections, sectionCall, sectionPrelude } from '../remote/sections.js';

export interface LinkStatus {
  name: string;
  /** Takes new connections now (in the pool). */
  inPool: boolean | null;
  /** Over the monitor's window: average RTT and jitter in ms, lost probes in percent; null unknown. */
  rttMs: number | null;
  jitterMs: number | null;
  lossPct: number | null;
  /** State changes since the monitor started, and in the last hour. */
  transitions: number | null;
  transitionsLastHour: number;
  /** Flap damping holds the link down until then (Unix time), or null. */
  heldUntil: number | null;
  /** Why the last change happened, as the monitor logged it. */
  why: string;
  interface: string;
  /** static | dhcp | none (point-to-point), from the inventory. */
  kind: string;
  /** The monitor found the interface up, with an address and (unless point-to-point) a next hop; null before it says. */
  ready: boolean | null;
  /** Why it is not ready ('' when it is). */
  reason: string;
  /** The link's address and next hop as the monitor last read them (a DHCP link's are learned). */
  address: string | null;
  nextHop: string | null;
  /** Where the next hop came from: inventory, dhcp-lease, main-route or point-to-point. */
  nextHopSource: string | null;
  tier: number;
  /** LAN sources sticking to the link now; null without sticky (or when the gateway could not say). */
  stickySources: number | null;
  /** As the monitor sees it; null when the state file does not mention the link. */
  state: 'up' | 'degraded' | 'down' | null;
  /** Unix time of the last change the monitor saw (or of its start). */
  since: number | null;
  /** The last probe round, e.g. "2/2 ok 3ms" or "0/1 fail". */
  last: string | null;
  mark: string;
  /** Tracked connections carrying the link's mark; null when neither conntrack nor /proc/net/nf_conntrack is there. */
  connections: number | null;
}

export interface GatewayStatus {
  gateway: string;
  /** lbprov placed the monitor on this gateway (its script exists). */
  deployed: boolean;
  running: boolean;
  /** The supervisor's pid (or the systemd unit's main process). */
  pid: number | null;
  workerPid: number | null;
  revision: string | null;
  mechanism: string | null;
  allDown: boolean;
  /** Links the balancing chain currently spreads new connections over. */
  balanced: string[];
  updated: number | null;
  /** Seconds since the monitor last wrote its state, on the gateway's clock. */
  age: number | null;
  links: LinkStatus[];
  /** The last applies, confirms and reverts recorded on the gateway, oldest first. */
  audit: AuditRecord[];
  /** The monitor's last log lines: from its unit's journal on systemd, else its log file. */
  events: string[];
  eventsFrom: 'journal' | 'file';
  /** Times systemd restarted the monitor (NRestarts); null without systemd. */
  restarts: number | null;
  /** Problems worth an exit code 1: a deployed monitor that is not running. */
  errors: string[];
  /** Oddities that are not errors (no monitor deployed, a state file that stopped moving). */
  warnings: string[];
}

export interface AuditRecord {
  time: string;
  result: string;
  by: string;
  from: string;
  run: string;
  changes: number | null;
}

/** Audit lines come from the gateway: only well-formed records with plain fields are kept. */
export function parseAuditLines(body: string): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (const line of body.split('\n')) {
    try {
      const r = JSON.parse(line) as { time?: unknown; result?: unknown; from?: unknown; record?: { by?: unknown; run?: unknown; changes?: unknown } };
      const text = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9@._:+-]{0,80}$/.test(v) ? v : '');
      if (!text(r.time) || !text(r.result)) continue;
      records.push({
        time: text(r.time),
        result: text(r.result),
        by: text(r.record?.by),
        from: text(r.from),
        run: text(r.record?.run),
        changes: Array.isArray(r.record?.changes) ? r.record.changes.length : null,
      });
    } catch {
      // not a record
    }
  }
  return records;
}

/** The gateway's log lines are shown, not trusted: control characters out, each cut to 300 characters. */
function parseEvents(body: string): Pick<GatewayStatus, 'events' | 'eventsFrom' | 'restarts'> {
  const lines = body.split('\n');
  const value = (key: string) => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
  return {
    eventsFrom: value('from') === 'journal' ? 'journal' : 'file',
    restarts: integer(value('restarts')),
    events: lines.filter((l) => l.startsWith('line=')).map((l) => l.slice(5).replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 300)),
  };
}

export interface StatusScript {
  marker: string;
  script: string;
}

const SECTIONS = ['state', 'service', 'conntrack', 'sticky', 'audit', 'events'] as const;
const EVENTS = 8;
/** templates/monitor/loop.partial.hbs writes its state at least this often. */
const STATE_HEARTBEAT_S = 5;
const AUDIT_RECORDS = 5;

/** Counts with conntrack when it is installed, else from /proc/net/nf_conntrack (mark under the mask, in awk arithmetic). */
function connectionCountScript(gw: GatewaySpec): string {
  const mask = gw.markMask >>> 0;
  const low = mask & -mask;
  const width = Math.log2(mask / low + 1);
  return gw.links
    .map((l, i) => {
      const mark = linkMark(gw.markMask, i);
      const value = mark / low;
      const filter = `${hex(mark)}/${hex(gw.markMask)}`;
      return [
        `if command -v conntrack >/dev/null 2>&1; then n=$(conntrack -L -m ${filter} 2>/dev/null | wc -l)`,
        `elif [ -r /proc/net/nf_conntrack ]; then n=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^mark=/) { m = substr($i, 6) + 0; if (int(m / ${low}) % ${2 ** width} == ${value}) c++ } } END { print c + 0 }' /proc/net/nf_conntrack)`,
        'else n=; fi',
        `echo ${shellQuote(l.name)}="$n"`,
      ].join('\n');
    })
    .join('\n');
}

/** Per link, the sources sticking to it, counted the way the gateway's firewall backend keeps them. */
function stickyCountScript(gw: GatewaySpec): string {
  const sticky = gw.sticky;
  if (!sticky) return 'true';
  const branches = FIREWALL_BACKENDS.map(
    (b) => `${b.name}) ${gw.links.map((l, i) => `echo ${shellQuote(l.name)}="$(${b.stickyCount({ name: l.name, index: i + 1 }, sticky)})"`).join('; ')} ;;`,
  );
  return [`b=; read -r b 2>/dev/null < ${FIREWALL_RECORD_PATH}`, `case "$b" in`, ...branches, 'esac'].join('\n');
}

export function buildStatusScript(gw: GatewaySpec, marker = newMarker()): StatusScript {
  const service = [
    `p=; w=; r=; read -r p 2>/dev/null < ${serviceRunPath('monitor', 'pid')}; read -r w 2>/dev/null < ${serviceRunPath('monitor', 'worker.pid')}; read -r r 2>/dev/null < ${serviceRunPath('monitor', 'revision')}`,
    'echo "pid=$p"; if alive "$p"; then echo running=1; else echo running=0; fi',
    'echo "worker_pid=$w"; if alive "$w"; then echo worker_running=1; else echo worker_running=0; fi',
    'echo "revision=$r"',
    `if [ -f ${shellQuote(serviceScriptPath('monitor'))} ]; then echo deployed=1; else echo deployed=0; fi`,
    'echo "now=$(date +%s)"',
  ].join('\n');
  const lines = [
    PREAMBLE,
    sectionPrelude({ marker }),
    // A zombie still answers kill -0: alive means a process that is not one.
    'alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q "^State:[[:space:]]*Z" "/proc/$1/status" 2>/dev/null; }',
    sectionCall('state', `show ${MONITOR_STATE_PATH}; true`),
    sectionCall('service', service),
    sectionCall('conntrack', connectionCountScript(gw)),
    sectionCall('sticky', stickyCountScript(gw)),
    sectionCall('audit', `tail -n ${AUDIT_RECORDS} ${AUDIT_LOG} 2>/dev/null; true`),
    sectionCall(
      'events',
      [
        `if [ -d /run/systemd/system ] && command -v journalctl >/dev/null 2>&1; then`,
        `  echo from=journal; echo "restarts=$(systemctl show -p NRestarts --value ${MONITOR_UNIT} 2>/dev/null)"`,
        `  journalctl -u ${MONITOR_UNIT} -n ${EVENTS} -o short-iso --no-pager -q 2>/dev/null | sed 's/^/line=/'`,
        `else echo from=file; tail -n ${EVENTS} ${LOG_DIR}/monitor.log 2>/dev/null | sed 's/^/line=/'; fi; true`,
      ].join('\n'),
    ),
    DONE_LINE,
  ];
  return { marker, script: lines.join('\n') + '\n' };
}

function keyValues(body: string): Map<string, string> {
  return new Map(Object.entries(parseKeyValues(body)));
}

const ipv4Or = (text: string | undefined): string | null => (text !== undefined && isIpv4(text) ? text : null);
const NEXT_HOP_SOURCES = new Set(['inventory', 'dhcp-lease', 'main-route', 'point-to-point']);

const integer = (text: string | undefined): number | null => (text !== undefined && /^\d{1,12}$/.test(text) ? Number(text) : null);

/** Throws when the output is cut short: a partial status must not read as "monitor not running". */
export function parseStatusOutput(gw: GatewaySpec, output: string, marker: string): GatewayStatus {
  const sections = readSections(output, marker);
  if (SECTIONS.some((s) => !sections.has(s))) throw new Error('status output is truncated or garbled');
  const bodies = new Map([...sections].map(([name, s]) => [name, s.body]));
  const state = keyValues(bodies.get('state')!);
  const service = keyValues(bodies.get('service')!);
  const counts = keyValues(bodies.get('conntrack')!);
  const sticky = keyValues(bodies.get('sticky')!);

  const deployed = service.get('deployed') === '1';
  const running = service.get('running') === '1';
  const updated = integer(state.get('updated'));
  const now = integer(service.get('now'));
  const age = updated !== null && now !== null ? Math.max(0, now - updated) : null;
  const errors: string[] = [];
  const warnings: string[] = [];
  const pid = integer(service.get('pid'));
  if (deployed && !running) {
    errors.push(pid === null ? 'the monitor is deployed but not running (no pidfile)' : `the monitor is deployed but not running (pid ${pid} is gone)`);
  }
  if (!deployed) warnings.push('no monitor deployed (run lbprov up)');
  // The monitor writes its state on every change and at least every max(longest interval, 5 s); three missed rounds or writes mean a stuck worker.
  const expected = Math.max(3 * Math.max(...gw.links.map((l) => l.monitor.intervalS)), STATE_HEARTBEAT_S);
  if (running && age !== null && age > expected + 5) warnings.push(`the monitor's state is ${age}s old (expected a write every ${expected}s at most)`);

  const links = gw.links.map((l, i): LinkStatus => {
    const health = state.get(`link.${l.name}`);
    const ready = state.get(`link.${l.name}.ready`);
    const source = state.get(`link.${l.name}.source`) ?? '';
    const key = (k: string) => state.get(`link.${l.name}.${k}`);
    const changes = (key('changes') ?? '').split(' ').map(integer).filter((t): t is number => t !== null);
    const held = integer(key('held_until'));
    return {
      name: l.name,
      inPool: key('in_pool') === '1' ? true : key('in_pool') === '0' ? false : null,
      rttMs: integer(key('rtt_us')) === null ? null : integer(key('rtt_us'))! / 1000,
      jitterMs: integer(key('jitter_us')) === null ? null : integer(key('jitter_us'))! / 1000,
      lossPct: integer(key('loss_pm')) === null ? null : integer(key('loss_pm'))! / 10,
      transitions: integer(key('transitions')),
      transitionsLastHour: now === null ? changes.length : changes.filter((t) => now - t < 3600).length,
      heldUntil: held && held > 0 ? held : null,
      why: /^[A-Za-z0-9 ._:,/()%+-]{0,400}$/.test(key('why') ?? '') ? (key('why') ?? '') : '',
      interface: l.interface,
      kind: l.nextHop.kind,
      ready: ready === '1' ? true : ready === '0' ? false : null,
      reason: /^[A-Za-z0-9 ._:,/-]{0,128}$/.test(state.get(`link.${l.name}.reason`) ?? '') ? state.get(`link.${l.name}.reason`) ?? '' : '',
      address: ipv4Or(state.get(`link.${l.name}.address`)),
      nextHop: ipv4Or(state.get(`link.${l.name}.nexthop`)),
      nextHopSource: NEXT_HOP_SOURCES.has(source) ? source : null,
      tier: l.tier,
      stickySources: gw.sticky ? integer(sticky.get(l.name)?.trim()) : null,
      state: health === 'up' || health === 'degraded' || health === 'down' ? health : null,
      since: integer(state.get(`link.${l.name}.since`)),
      last: state.get(`link.${l.name}.last`) || null,
      mark: hex(linkMark(gw.markMask, i)),
      connections: integer(counts.get(l.name)),
    };
  });
  return {
    gateway: gw.name,
    deployed,
    running,
    pid,
    workerPid: service.get('worker_running') === '1' ? integer(service.get('worker_pid')) : null,
    revision: service.get('revision') || null,
    mechanism: state.get('mechanism') || null,
    allDown: state.get('all_down') === '1',
    balanced: (state.get('balanced') ?? '').split(',').filter(Boolean),
    updated,
    age,
    links,
    audit: parseAuditLines(bodies.get('audit')!),
    ...parseEvents(bodies.get('events')!),
    errors,
    warnings,
  };
}
