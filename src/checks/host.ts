/** Checks of the gateway's tools, kernel settings and interfaces against what the balancer needs. */
import type { GatewaySpec, LinkSpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { FileResource, Resource, SysctlResource } from '../model/resources.js';
import type { CheckResult } from '../model/checks.js';
import { RESTORE_SCRIPT_PATH } from '../model/paths.js';
import { inPrefix } from '../model/net.js';
import { resolveLinkPaths } from '../routing/index.js';

function readyRemedy(link: LinkSpec): string {
  if (link.nextHop.kind === 'dhcp') return `check the DHCP client on ${link.interface}`;
  if (link.nextHop.kind === 'none') return `check the point-to-point session (pppd) of ${link.interface}`;
  return `check ${link.interface} and its address, or fix the interface name in the inventory`;
}

export function checkTools(facts: HostFacts, desired: readonly Resource[]): CheckResult[] {
  const t = facts.tools;
  const out: CheckResult[] = [];
  out.push(
    t.iproute2Json
      ? { id: 'tool:iproute2', status: 'ok', message: 'ip supports -json' }
      : { id: 'tool:iproute2', status: 'fail', message: 'ip does not support -json', remedy: 'install iproute2 4.14 or later' },
  );
  const monitored = desired.some((r) => r.kind === 'service');
  if (!t.ping) {
    out.push({
      id: 'tool:ping',
      status: monitored ? 'fail' : 'warn',
      message: 'ping is not installed: the link monitor cannot probe links',
      remedy: 'install iputils-ping',
    });
  } else {
    out.push({ id: 'tool:ping', status: 'ok', message: 'ping is installed' });
  }
  out.push(
    t.conntrack
      ? { id: 'tool:conntrack', status: 'ok', message: 'conntrack is installed (failover deletes a dead link\'s tracked connections)' }
      : {
          id: 'tool:conntrack',
          status: 'warn',
          message: 'conntrack is not installed: on failover, connections already tracked on the dead link keep their mark until they time out',
          remedy: 'install conntrack',
        },
  );
  const persisted = desired.some((r): r is FileResource => r.kind === 'file' && r.path === RESTORE_SCRIPT_PATH);
  if (t.initSystem === 'systemd') {
    out.push({ id: 'tool:init', status: 'ok', message: persisted ? 'systemd: lbprov.service restores the balancer at boot' : 'systemd' });
  } else {
    out.push({
      id: 'tool:init',
      status: persisted ? 'warn' : 'ok',
      message: persisted
        ? `no systemd: nothing runs ${RESTORE_SCRIPT_PATH} at boot unless the boot scripts call it`
        : 'no systemd',
      ...(persisted ? { remedy: `run "sh ${RESTORE_SCRIPT_PATH}" once the links are up at boot (e.g. a post-up line in /etc/network/interfaces, or /etc/rc.local)` } : {}),
    });
  }
  return out;
}

/** Settings the plan sets are "fix" when they differ now: up fixes them, and down restores them. */
export function checkSysctls(facts: HostFacts, desired: readonly Resource[]): CheckResult[] {
  return desired
    .filter((r): r is SysctlResource => r.kind === 'sysctl')
    .map((r) => {
      const now = facts.sysctls[r.key];
      const id = `sysctl:${r.key}`;
      if (now === undefined || now === '') return { id, status: 'fail', message: `${r.key} does not exist on this kernel`, remedy: 'check the interface name in the inventory' };
      return now === r.value ? { id, status: 'ok', message: `${r.key} = ${now}` } : { id, status: 'fix', message: `${r.key} is ${now}; the plan sets ${r.value}` };
    });
}

/**
 * A link that is not ready (interface missing or down, no address, no lease yet) is a warning:
 * everything that does not need its address is installed, and the monitor adds it to the pool
 * when it comes up. A static next hop outside the interface's prefixes is an inventory mistake.
 */
export function checkInterfaces(gw: GatewaySpec, facts: HostFacts): CheckResult[] {
  const out: CheckResult[] = [];
  const paths = resolveLinkPaths(gw, facts);
  gw.links.forEach((link, i) => {
    const path = paths[i]!;
    const found = facts.interfaces.find((f) => f.name === link.interface);
    const id = `interface:${link.interface}`;
    if (!path.ready) {
      out.push({ id, status: 'warn', message: `link ${link.name}: ${path.reason}; it joins the pool when it comes up`, remedy: readyRemedy(link) });
      return;
    }
    out.push({ id, status: 'ok', message: `link ${link.name}: ${link.interface} is up, ${found!.ipv4.join(', ')}` });
    if (link.nextHop.kind === 'none') return;
    const hop = path.nextHop!;
    const onLink = found!.ipv4.find((cidr) => inPrefix(hop, cidr));
    const learned = link.nextHop.kind === 'dhcp' ? ' (learned from DHCP)' : '';
    out.push(
      onLink
        ? { id: `nexthop:${link.name}`, status: 'ok', message: `link ${link.name}: next hop ${hop}${learned} is on-link (${onLink})` }
        : {
            id: `nexthop:${link.name}`,
            status: link.nextHop.kind === 'static' ? 'fail' : 'warn',
            message: `link ${link.name}: next hop ${hop}${learned} is not inside any prefix of ${link.interface} (${found!.ipv4.join(', ')})`,
            remedy: link.nextHop.kind === 'static' ? "fix the link's gateway in the inventory or the interface's address" : "check the DHCP server's router option",
          },
    );
  });
  for (const name of gw.lanInterfaces) {
    const found = facts.interfaces.find((i) => i.name === name);
    if (!found) out.push({ id: `interface:${name}`, status: 'fail', message: `LAN: interface ${name} does not exist`, remedy: 'fix lan.interfaces in the inventory' });
    else if (!found.up) out.push({ id: `interface:${name}`, status: 'warn', message: `LAN: interface ${name} is down: its clients are not balanced until it is up` });
    else out.push({ id: `interface:${name}`, status: 'ok', message: `LAN: ${name} is up` });
  }
  return out;
}
