/**
 * The facts every gateway has whatever its firewall: kernel, sysctls, lbprov's files (one tar
 * stream), modules, tools, init system and the monitor's state. Shell to print them, and the
 * pure parsers of what came back.
 */
import type { FileResource, ServiceResource, SysctlResource } from '../model/resources.js';
import { SHA256_HEX, type DhcpLease, type FactsRequest, type KnownFile, type ModuleFacts, type MonitorFacts, type ToolFacts } from '../model/facts.js';
import { isInterfaceName, isIpv4 } from '../model/net.js';
import { resourceId } from '../model/resources.js';
import { DHCP_LEASE_DIR, isOwnedFile, MANIFEST_PATH, MONITOR_STATE_PATH, serviceRunPath, SERVICE_NAME, SYSCTL_KEY, sysctlPath } from '../model/paths.js';
import { shellQuote } from '../remote/quote.js';
import { parseKeyValues, type Section, type SectionReader } from '../remote/sections.js';
import { readTar } from './tar.js';

/** Services whose pidfile and revision the script reads (names that could not be one are left out). */
export function requestedServices(request: FactsRequest): string[] {
  return request.services.filter((n) => SERVICE_NAME.test(n));
}

export function coreSections(request: FactsRequest): [string, string][] {
  return [
    ['kernel', 'echo "$kr"'],
    // read is a shell builtin: no process per key.
    ['sysctl', request.sysctlKeys.filter((k) => SYSCTL_KEY.test(k)).map((k) => `v=; read -r v < ${shellQuote(sysctlPath(k))}; printf '%s=%s\\n' ${shellQuote(k)} "$v"`).join('; ') || 'true'],
    ['files', filesScript(request.filePaths.filter(isOwnedFile), request.knownFiles ?? [])],
    ['modules-loaded', 'show /proc/modules'],
    ['modules-builtin', '[ -r "/lib/modules/$kr/modules.builtin" ] && cat "/lib/modules/$kr/modules.builtin"'],
    ['modules-available', availableModulesScript()],
    ['tools', toolsScript()],
    ['monitor', `show ${MONITOR_STATE_PATH}; true`],
    ['dhcp-leases', `for f in ${DHCP_LEASE_DIR}/*; do [ -f "$f" ] || continue; echo "@\${f##*/}"; while IFS= read -r l; do echo "$l"; done < "$f"; done; true`],
    ...requestedServices(request).map((name): [string, string] => [`service-${name}`, serviceScript(name)]),
  ];
}

/** A service counts as running when the pid in its pidfile is alive. */
function serviceScript(name: string): string {
  // kill -0 succeeds on a zombie: read the process state instead.
  return [
    `p=; r=; read -r p < ${serviceRunPath(name, 'pid')}; read -r r < ${serviceRunPath(name, 'revision')}; echo "pid=$p"; echo "revision=$r"`,
    'st=; case "$p" in ""|*[!0-9]*) ;; *) while read -r k v _; do [ "$k" = State: ] && st=$v && break; done < /proc/"$p"/status;; esac',
    'if [ -n "$st" ] && [ "$st" != Z ]; then echo running=1; else echo running=0; fi',
  ].join('\n');
}

/**
 * Every file's mode and hash (`stat` and `sha256sum`, two processes however many files there
 * are); only files whose hash matches none of the contents the controller already has travel, in
 * one tar stream. A no-op run sends hashes instead of the monitor's 40 KB script and the rest.
 * Paths are plain words ([A-Za-z0-9_./-]), so the lists need no quoting.
 */
function filesScript(paths: string[], known: readonly KnownFile[]): string {
  // Files named in the manifest are read too, so files lbprov stopped wanting can be removed.
  // Kept from the manifest: plain words, no `..`, under lbprov's folders or named lbprov*.
  const knownPatterns = known.filter((k) => SHA256_HEX.test(k.sha256) && isOwnedFile(k.path)).map((k) => `'${k.sha256} ${k.path}'`);
  return [
    `fl=${shellQuote([MANIFEST_PATH, ...paths].join(' '))}`,
    `if [ -r ${MANIFEST_PATH} ]; then while IFS= read -r l || [ -n "$l" ]; do case $l in *..*|*[!A-Za-z0-9_./-]*) continue;; /etc/lbprov/*|/var/lib/lbprov/*) ;; /*/*) case \${l##*/} in lbprov*) ;; *) continue;; esac;; *) continue;; esac; case " $fl " in *" $l "*) ;; *) fl="$fl $l";; esac; done < ${MANIFEST_PATH}; fi`,
    `stat -c '@m %a %n %F' -- $fl 2>/dev/null`,
    // The loop runs in the pipeline's subshell, so the tar of unknown files is inside it too.
    'sha256sum -- $fl 2>/dev/null | { tl=; while read -r h p; do echo "@h $h $p"; case "$h $p" in ' +
      (knownPatterns.length > 0 ? `${knownPatterns.join('|')}) ;; ` : '') +
      '*) tl="$tl ${p#/}";; esac; done; if [ -n "$tl" ]; then echo @tar; tar -C / -b 1 -cf - --no-recursion --ignore-failed-read -- $tl 2>/dev/null | base64 -w0; echo; fi; }',
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
    'for tool in ip ping conntrack base64 flock setsid; do command -v "$tool" >/dev/null 2>&1 && echo "has=$tool"; done',
    'if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=other; fi',
  ].join('\n');
}

export function sysctlResources(body: string, request: FactsRequest): { sysctls: Record<string, string>; owned: SysctlResource[] } {
  const sysctls = parseKeyValues(body);
  const owned: SysctlResource[] = [];
  for (const key of request.sysctlKeys) {
    const value = sysctls[key];
    if (value !== undefined && value !== '') owned.push({ kind: 'sysctl', id: resourceId('sysctl', key), key, value });
  }
  return { sysctls, owned };
}

/**
 * The files section: `@m MODE PATH TYPE` lines (stat), `@h SHA256 PATH` lines, then `@tar` and
 * the base64 tar of the files whose hash the controller did not know. A regular file is present
 * with its tar content, else with the known content its hash names; anything else is absent.
 */
export function parseFiles(body: string, known: readonly KnownFile[] = []): FileResource[] {
  const files = new Map<string, FileResource>();
  const lines = body.split('\n');
  const tarAt = lines.indexOf('@tar');
  if (tarAt !== -1) {
    for (const entry of readTar(Buffer.from((lines[tarAt + 1] ?? '').trim(), 'base64'))) {
      if (!isOwnedFile(entry.path)) continue;
      const mode = entry.mode.toString(8).padStart(4, '0');
      files.set(entry.path, { kind: 'file', id: resourceId('file', entry.path), path: entry.path, mode, content: entry.content.toString('utf8') });
    }
  }
  const modes = new Map<string, string>();
  const hashes = new Map<string, string>();
  for (const line of tarAt === -1 ? lines : lines.slice(0, tarAt)) {
    const m = /^@m ([0-7]{1,4}) (\S+) regular (?:empty )?file$/.exec(line);
    if (m) modes.set(m[2]!, m[1]!.padStart(4, '0'));
    const h = /^@h ([0-9a-f]{64}) (\S+)$/.exec(line);
    if (h) hashes.set(h[2]!, h[1]!);
  }
  const byHash = new Map(known.map((k) => [`${k.sha256} ${k.path}`, k.content]));
  for (const [path, mode] of modes) {
    if (files.has(path) || !isOwnedFile(path)) continue;
    const content = byHash.get(`${hashes.get(path)} ${path}`);
    if (content !== undefined) files.set(path, { kind: 'file', id: resourceId('file', path), path, mode, content });
  }
  return [...files.values()];
}

function listOrNull(s: Section | undefined, pick: (line: string) => string | undefined): string[] | null {
  if (!s || s.rc !== 0) return null;
  return s.body.split('\n').map(pick).filter((x): x is string => !!x && /^[A-Za-z0-9_-]{1,64}$/.test(x));
}

export function parseModules(read: SectionReader): ModuleFacts {
  const base = (l: string) => l.trim().split('/').pop()?.replace(/\.ko.*$/, '').replaceAll('-', '_');
  return {
    loaded: listOrNull(read.section('modules-loaded'), (l) => l.split(' ')[0]),
    builtin: listOrNull(read.section('modules-builtin'), base),
    available: listOrNull(read.section('modules-available'), base),
  };
}

/** `iproute2Json`: the `ip -j` sections answered in JSON. */
export function parseTools(body: string, iproute2Json: boolean): ToolFacts {
  const lines = body.split('\n');
  const has = new Set(lines.filter((l) => l.startsWith('has=')).map((l) => l.slice(4)));
  return {
    iproute2Json,
    ping: has.has('ping'),
    conntrack: has.has('conntrack'),
    initSystem: parseKeyValues(body).init === 'systemd' ? 'systemd' : 'other',
  };
}

export interface ServiceState {
  name: string;
  pid: number | null;
  running: boolean;
  revision: string;
}

export function parseServices(read: SectionReader, request: FactsRequest): ServiceState[] {
  return requestedServices(request).map((name) => {
    const kv = parseKeyValues(read.section(`service-${name}`)?.body ?? '');
    return {
      name,
      pid: /^\d{1,9}$/.test(kv.pid ?? '') ? Number(kv.pid) : null,
      running: kv.running === '1',
      revision: /^[0-9a-f]{1,64}$/.test(kv.revision ?? '') ? kv.revision! : '',
    };
  });
}

export function serviceResources(services: readonly ServiceState[]): ServiceResource[] {
  return services.filter((s) => s.running).map((s) => ({ kind: 'service', id: resourceId('service', s.name), name: s.name, revision: s.revision }));
}

/** The monitor's state file: key=value lines; anything that does not look like one is dropped. */
export function parseMonitor(body: string, service: ServiceState | undefined): MonitorFacts {
  const state: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseKeyValues(body))) {
    if (/^[a-z0-9_.-]{1,64}$/.test(k) && /^[A-Za-z0-9_.:,/ ()%+-]{0,400}$/.test(v)) state[k] = v;
  }
  return { pid: service?.pid ?? null, running: service?.running ?? false, state };
}


/** The leases lbprov's dhclient hook recorded: "@<interface>" then address= and router= lines. */
export function parseDhcpLeases(body: string, warnings: string[]): Record<string, DhcpLease> {
  const leases: Record<string, DhcpLease> = {};
  for (const block of body.split(/^@/m).slice(1)) {
    const [name = '', ...lines] = block.split('\n');
    const kv = parseKeyValues(lines.join('\n'));
    const router = (kv.router ?? '').split(' ')[0] ?? '';
    if (!isInterfaceName(name) || !isIpv4(kv.address ?? '') || !isIpv4(router)) {
      if (name !== '') warnings.push(`ignored the DHCP lease record of ${JSON.stringify(name.slice(0, 32))}: no valid address and router`);
      continue;
    }
    leases[name] = { address: kv.address!, router };
  }
  return leases;
}
