/**
 * The whole current state of a gateway in one round trip: one POSIX shell
 * script whose output is split into sections by a per-run random marker, then
 * parsed by pure functions. Nothing from the output is trusted before it has
 * been parsed and validated.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { HostFacts, ModuleFacts, MonitorFacts, ToolFacts } from '../model/facts.js';
import type { FileResource, Resource, ServiceResource, SysctlResource } from '../model/resources.js';
import { RemoteError } from '../errors.js';
import { shellQuote } from '../ssh/quote.js';
import { FIREWALL_BACKENDS } from '../firewall/index.js';
import { parseInterfaces, parseIpRules, parseIpRoutes, splitJsonDocuments } from './iproute.js';
import { readTar } from './tar.js';
import { SERVICE_NAME, type OwnedRanges } from '../render/ownership.js';

export const MANIFEST_PATH = '/etc/lbprov/manifest';
export const MONITOR_RUN_DIR = '/run/lbprov';
const OWNED_FILE = /^\/(etc\/lbprov|var\/lib\/lbprov|etc\/iproute2\/rt_tables\.d\/lbprov|etc\/modules-load\.d\/lbprov|etc\/systemd\/system\/lbprov|etc\/systemd\/system\/multi-user\.target\.d\/lbprov)[A-Za-z0-9_.\/-]*$/;
const SYSCTL_KEY = /^[a-z0-9_]+(\.[A-Za-z0-9_@/-]+)+$/;

/** Under lbprov's folders, with no empty, `.` or `..` segment that could point it anywhere else. */
function isOwnedFile(path: string): boolean {
  return OWNED_FILE.test(path) && path.split('/').slice(1).every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** What the facts script must read besides the fixed sections. */
export interface FactsRequest {
  sysctlKeys: string[];
  filePaths: string[];
  /** Services (daemons) lbprov runs: /run/lbprov/<name>.pid and .revision are read. */
  services: string[];
  ranges: OwnedRanges;
}

export interface FactsScript {
  marker: string;
  script: string;
}

export function sysctlPath(key: string): string {
  // sysctl(8) writes dots in interface names as slashes; swap them back.
  return `/proc/sys/${key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'))}`;
}

/** Each section's stderr is kept up to this many characters: enough for an error message. */
const SECTION_STDERR_CHARS = 4096;

export interface FactsScriptOptions {
  marker?: string;
  /** Runs first (the lock of `up`); its failure ends the script with its own exit code. */
  prelude?: string;
  /**
   * Shell word naming a scratch file that collects each section's stderr into the output (an
   * apply's folder, whose stderr is not the connection's). Without one, sections write their
   * stderr to the script's own stderr after a marker line: no temporary file to make and remove.
   */
  errorFile?: string;
}

/**
 * Routing rules, routes, links and IPv4 addresses from one `ip` process: one JSON array each, in
 * this order. Links come from `link show` because `-4 addr show` leaves out interfaces that have
 * no IPv4 address.
 */
const IP_BATCH_COMMANDS = ['rule show', 'route show table all', 'link show', 'addr show'] as const;
const IP_BATCH = `ip -N -j -4 -batch - <<'EOF'\n${IP_BATCH_COMMANDS.join('\n')}\nEOF`;

export function buildFactsScript(request: FactsRequest, opts: FactsScriptOptions = {}): FactsScript {
  const marker = opts.marker ?? randomBytes(8).toString('hex');
  const sections: (readonly [string, string])[] = [
    ['kernel', 'echo "$kr"'],
    ...FIREWALL_BACKENDS.flatMap((b) => b.factsSections('ipv4')),
    ['ip', IP_BATCH],
    // read is a shell builtin: no process per key.
    ['sysctl', request.sysctlKeys.filter((k) => SYSCTL_KEY.test(k)).map((k) => `v=; read -r v < ${shellQuote(sysctlPath(k))}; printf '%s=%s\\n' ${shellQuote(k)} "$v"`).join('; ') || 'true'],
    ['files', filesScript(request.filePaths.filter(isOwnedFile))],
    ['modules-loaded', 'show /proc/modules'],
    ['modules-builtin', '[ -r "/lib/modules/$kr/modules.builtin" ] && cat "/lib/modules/$kr/modules.builtin"'],
    ['modules-available', availableModulesScript()],
    ['ip-tables-matches', 'show /proc/net/ip_tables_matches'],
    ['ip-tables-targets', 'show /proc/net/ip_tables_targets'],
    ['tools', toolsScript()],
    ['monitor', `show ${MONITOR_RUN_DIR}/state; true`],
    ...request.services.filter((n) => SERVICE_NAME.test(n)).map((name): [string, string] => [`service-${name}`, serviceScript(name)]),
  ];
  const lines = [
    'LC_ALL=C; export LC_ALL',
    'PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH',
    opts.prelude ?? '',
    `m=${marker}`,
    ...(opts.errorFile ? [`e=${opts.errorFile}`] : []),
    'kr=; read -r kr < /proc/sys/kernel/osrelease || kr=$(uname -r)',
    // cat without a process, for the small files most sections read.
    'show() { [ -r "$1" ] || return 1; while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done < "$1"; }',
    // No subshell per section: on 100 gateways the forks alone cost a CPU-second.
    sectionFunction(opts.errorFile !== undefined),
    ...sections.map(([name, cmd]) => `sec ${name} ${shellQuote(cmd)}`),
    // Without this last line the output was cut short, however complete its sections look.
    'printf "@@%s done\\n" "$m"',
  ];
  return { marker, script: lines.join('\n') + '\n' };
}

/**
 * `sec NAME COMMAND`: the section between its markers. Its stderr is collected from $e into the
 * output after the end marker, or written to the script's stderr after a begin line of its own.
 */
function sectionFunction(stderrToFile: boolean): string {
  const [before, redirect, after] = stderrToFile
    ? ['', ' 2>"$e"', ` if [ -s "$e" ]; then printf "@@%s stderr %s\\n" "$m" "$1"; head -c ${SECTION_STDERR_CHARS} "$e"; printf "\\n@@%s endstderr %s\\n" "$m" "$1"; fi;`]
    : [' printf "@@%s begin %s\\n" "$m" "$1" >&2;', '', ''];
  return `sec() { printf "@@%s begin %s\\n" "$m" "$1";${before} { eval "$2"; } </dev/null${redirect}; rc=$?; printf "\\n@@%s end %s %s\\n" "$m" "$1" "$rc";${after} }`;
}

/** A service counts as running when the pid in its pidfile is alive. */
function serviceScript(name: string): string {
  const base = `${MONITOR_RUN_DIR}/${name}`;
  // kill -0 succeeds on a zombie: read the process state instead.
  return [
    `p=; r=; read -r p < ${base}.pid; read -r r < ${base}.revision; echo "pid=$p"; echo "revision=$r"`,
    'st=; case "$p" in ""|*[!0-9]*) ;; *) while read -r k v _; do [ "$k" = State: ] && st=$v && break; done < /proc/"$p"/status;; esac',
    'if [ -n "$st" ] && [ "$st" != Z ]; then echo running=1; else echo running=0; fi',
  ].join('\n');
}

/**
 * Every file in one tar stream: two processes however many files there are.
 * Paths are plain words ([A-Za-z0-9_./-]), so the list needs no quoting.
 */
function filesScript(paths: string[]): string {
  // Files named in the manifest are read too, so files lbprov stopped wanting can be removed.
  // Kept from the manifest: plain words, no `..`, under lbprov's folders or named lbprov*.
  return [
    `fl=${shellQuote([MANIFEST_PATH, ...paths].map((p) => p.slice(1)).join(' '))}`,
    `if [ -r ${MANIFEST_PATH} ]; then while IFS= read -r l || [ -n "$l" ]; do case $l in *..*|*[!A-Za-z0-9_./-]*) continue;; /etc/lbprov/*|/var/lib/lbprov/*) ;; /*/*) case \${l##*/} in lbprov*) ;; *) continue;; esac;; *) continue;; esac; fl="$fl \${l#/}"; done < ${MANIFEST_PATH}; fi`,
    'tar -C / -cf - --no-recursion --ignore-failed-read -- $fl 2>/dev/null | base64 -w0',
  ].join('\n');
}

/**
 * Netfilter modules installed for the running kernel, from modules.dep (one
 * file) rather than a walk of the module tree; fails when there is no tree.
 */
function availableModulesScript(): string {
  return [
    'd="/lib/modules/$kr"',
    'if [ -r "$d/modules.dep" ]; then cut -d: -f1 "$d/modules.dep" | sed -n "s#.*/\\(xt_[^/]*\\|ipt_[^/]*\\|iptable_[^/]*\\|nf_[^/]*\\|nft_[^/]*\\|x_tables\\)\\.ko.*#\\1#p"',
    'elif [ -d "$d" ]; then find "$d" -name "*.ko*" | sed "s#.*/##; s#\\.ko.*##"',
    'else false; fi',
  ].join('\n');
}

function toolsScript(): string {
  return [
    'v=$(iptables -V 2>/dev/null); echo "iptables=$v"',
    'for tool in iptables-save iptables-restore iptables-legacy-save iptables-nft-save ip ping conntrack base64 flock setsid; do command -v "$tool" >/dev/null 2>&1 && echo "has=$tool"; done',
    'if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=other; fi',
    // The other iptables backend's rules are invisible to this one: count them for a warning.
    'case "$v" in *nf_tables*) o=iptables-legacy-save;; *) o=iptables-nft-save;; esac',
    // Legacy tables show in ip_tables_names: without any there is nothing to count.
    'case "$o" in iptables-legacy-save) x=; read -r x 2>/dev/null < /proc/net/ip_tables_names || o=;; esac',
    'if [ -n "$o" ] && command -v "$o" >/dev/null 2>&1; then echo "other=$("$o" 2>/dev/null | grep -c "^-A")"; fi',
  ].join('\n');
}

interface Section {
  body: string;
  rc: number;
  stderr: string;
}

/** `stderr`: the script's own stderr when its sections wrote there (no errorFile). */
export function splitSections(output: string, marker: string, stderr = ''): Map<string, Section> {
  const sections = new Map<string, Section>();
  const re = new RegExp(`^@@${marker} begin (\\S+)\\n([\\s\\S]*?)\\n@@${marker} end \\1 (\\d+)$(?:\\n@@${marker} stderr \\1\\n([\\s\\S]*?)\\n@@${marker} endstderr \\1$)?`, 'gm');
  for (const m of output.matchAll(re)) {
    sections.set(m[1]!, { body: m[2]!, rc: Number(m[3]), stderr: m[4] ?? '' });
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

export function parseFacts(host: string, output: string, marker: string, request: FactsRequest, stderr = ''): HostFacts {
  const sections = splitSections(output, marker, stderr);
  if (!new RegExp(`^@@${marker} done$`, 'm').test(output)) {
    throw new RemoteError('facts output is truncated (the script did not get to its end)', { host }, 'facts');
  }
  // Every begin must pair with its own end, once: a forged or unterminated marker means garbled output.
  const begins = output.match(new RegExp(`^@@${marker} begin `, 'gm'))?.length ?? 0;
  if (begins !== sections.size) {
    throw new RemoteError(`facts output has ${begins} section starts for ${sections.size} sections (forged or garbled markers)`, { host }, 'facts');
  }
  const warnings: string[] = [];
  const section = (name: string): Section => {
    const s = sections.get(name);
    if (!s) throw new RemoteError(`facts output is missing section "${name}" (truncated or garbled output)`, { host, resource: name }, 'facts');
    return s;
  };
  const required = (name: string, what: string): string => {
    const s = section(name);
    if (s.rc !== 0) throw new RemoteError(`${what} failed (exit ${s.rc})`, { host, command: what, stderr: s.stderr.trim(), exitCode: s.rc }, 'facts');
    if (s.stderr.trim()) warnings.push(`${what}: ${s.stderr.trim().split('\n')[0]}`);
    return s.body;
  };
  const wrap = <T>(what: string, parse: () => T): T => {
    try {
      return parse();
    } catch (e) {
      if (e instanceof RemoteError) throw e;
      throw new RemoteError(`cannot parse ${what}: ${(e as Error).message}`, { host, command: what }, 'facts');
    }
  };

  const owned: Resource[] = [];
  for (const backend of FIREWALL_BACKENDS) {
    owned.push(...wrap(backend.name, () => backend.ownedResources(required, 'ipv4', warnings)));
  }
  const [ruleJson, routeJson, linkJson, addrJson] = wrap('ip -batch', () => splitJsonDocuments(required('ip', 'ip -j -batch'), IP_BATCH_COMMANDS.length, 'ip -j -batch'));
  const rules = wrap('ip rule', () => parseIpRules(ruleJson, request.ranges.priorityFirst, request.ranges.priorityLast, warnings));
  const routes = wrap('ip route', () => parseIpRoutes(routeJson, request.ranges.tables));
  const interfaces = wrap('ip link and addr', () => parseInterfaces(linkJson, addrJson, warnings));
  owned.push(...rules, ...routes);

  const sysctls = parseKeyValues(section('sysctl').body);
  for (const key of request.sysctlKeys) {
    const value = sysctls[key];
    if (value !== undefined && value !== '') owned.push({ kind: 'sysctl', id: `sysctl:${key}`, key, value } satisfies SysctlResource);
  }
  owned.push(...wrap('the files section', () => parseFiles(section('files').body)));
  const services = request.services.filter((n) => SERVICE_NAME.test(n)).map((name) => ({ name, ...parseService(sections.get(`service-${name}`)) }));
  for (const svc of services) {
    if (svc.running) owned.push({ kind: 'service', id: `service:${svc.name}`, name: svc.name, revision: svc.revision } satisfies ServiceResource);
  }

  const facts: Omit<HostFacts, 'fingerprint'> = {
    kernel: section('kernel').body.trim(),
    interfaces,
    owned,
    sysctls,
    modules: parseModules(sections),
    tools: parseTools(section('tools').body, section('ip').rc === 0),
    monitor: parseMonitor(section('monitor').body, services.find((x) => x.name === 'monitor')),
    warnings,
  };
  if (facts.tools.otherBackendRules > 0) {
    warnings.push(`${facts.tools.otherBackendRules} rules exist in the other iptables backend; ${facts.tools.iptablesBackend ?? 'this'} backend does not see them`);
  }
  return { ...facts, fingerprint: factsFingerprint(facts) };
}

/**
 * What a saved plan depends on: lbprov's own state, the interfaces and the
 * monitor's view of link health (not its timestamps, which move every round).
 */
export function factsFingerprint(facts: Pick<HostFacts, 'owned' | 'interfaces' | 'monitor'>): string {
  const owned = [...facts.owned].sort((a, b) => a.id.localeCompare(b.id));
  const health = Object.entries(facts.monitor.state).filter(([k]) => /^link\.[^.]+$/.test(k) || k === 'balanced' || k === 'all_down').sort();
  const data = JSON.stringify({ owned, interfaces: facts.interfaces, health });
  return createHash('sha256').update(data).digest('hex');
}

function parseKeyValues(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of body.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

function parseFiles(body: string): FileResource[] {
  const files = new Map<string, FileResource>();
  for (const entry of readTar(Buffer.from(body.trim(), 'base64'))) {
    if (!isOwnedFile(entry.path)) continue;
    const mode = entry.mode.toString(8).padStart(4, '0');
    files.set(entry.path, { kind: 'file', id: `file:${entry.path}`, path: entry.path, mode, content: entry.content.toString('utf8') });
  }
  return [...files.values()];
}

function listOrNull(s: Section | undefined, pick: (line: string) => string | undefined): string[] | null {
  if (!s || s.rc !== 0) return null;
  return s.body.split('\n').map(pick).filter((x): x is string => !!x && /^[A-Za-z0-9_-]{1,64}$/.test(x));
}

function parseModules(sections: Map<string, Section>): ModuleFacts {
  const base = (l: string) => l.trim().split('/').pop()?.replace(/\.ko.*$/, '').replaceAll('-', '_');
  return {
    loaded: listOrNull(sections.get('modules-loaded'), (l) => l.split(' ')[0]),
    builtin: listOrNull(sections.get('modules-builtin'), base),
    available: listOrNull(sections.get('modules-available'), base),
    registeredMatches: listOrNull(sections.get('ip-tables-matches'), (l) => l.trim()) ?? [],
    registeredTargets: listOrNull(sections.get('ip-tables-targets'), (l) => l.trim()) ?? [],
  };
}

/** `iproute2Json`: the `ip -j` sections answered in JSON. */
function parseTools(body: string, iproute2Json: boolean): ToolFacts {
  const lines = body.split('\n');
  const value = (key: string) => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
  const has = new Set(lines.filter((l) => l.startsWith('has=')).map((l) => l.slice(4)));
  const version = value('iptables') || null;
  const backend = version ? (/\((nf_tables|legacy)\)/.exec(version)?.[1] ?? 'legacy') : null;
  return {
    iptablesVersion: version,
    iptablesBackend: backend,
    otherBackendRules: Number(value('other') ?? 0) || 0,
    // --noflush has been in iptables-restore since 1.2: having the tool is having the flag.
    iptablesRestoreNoflush: has.has('iptables-restore'),
    iproute2Json,
    ping: has.has('ping'),
    conntrack: has.has('conntrack'),
    initSystem: value('init') === 'systemd' ? 'systemd' : 'other',
  };
}

function parseService(s: Section | undefined): { pid: number | null; running: boolean; revision: string } {
  const kv = parseKeyValues(s?.body ?? '');
  return {
    pid: /^\d{1,9}$/.test(kv.pid ?? '') ? Number(kv.pid) : null,
    running: kv.running === '1',
    revision: /^[0-9a-f]{1,64}$/.test(kv.revision ?? '') ? kv.revision! : '',
  };
}

/** The monitor's state file: key=value lines; anything that does not look like one is dropped. */
function parseMonitor(body: string, service: { pid: number | null; running: boolean } | undefined): MonitorFacts {
  const state: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseKeyValues(body))) {
    if (/^[a-z0-9_.-]{1,64}$/.test(k) && /^[A-Za-z0-9_.:,/ -]{0,128}$/.test(v)) state[k] = v;
  }
  return { pid: service?.pid ?? null, running: service?.running ?? false, state };
}
