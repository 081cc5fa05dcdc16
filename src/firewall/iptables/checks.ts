/** What iptables needs on a gateway: its tools, and every kernel piece the rendered chains use. */
import type { CheckResult } from '../../model/checks.js';
import type { HostFacts } from '../../model/facts.js';
import type { GatewaySpec } from '../../model/inventory.js';
import type { Resource } from '../../model/resources.js';
import { checkPiece, pieceState } from '../kernel-pieces.js';
import { conditionPiece, piecesUsedBy } from './netfilter.js';

export function iptablesChecks(gw: GatewaySpec, facts: HostFacts, desired: readonly Resource[]): CheckResult[] {
  const ipt = facts.firewall.iptables;
  const pieces = piecesUsedBy(desired, ipt);
  const results = pieces.map((p) => checkPiece(p, facts.modules));
  if (!pieces.some((p) => p.id === 'match:condition')) results.push(...conditionFallback(gw, facts));
  return [...results, ...toolChecks(facts), ...stickyLimit(gw, facts)];
}

/** xt_recent forgets the oldest source past its list size: with more LAN hosts a link loses stickiness for some. */
function stickyLimit(gw: GatewaySpec, facts: HostFacts): CheckResult[] {
  if (!gw.sticky) return [];
  const max = facts.firewall.iptables?.recentListMax ?? 100;
  return [
    {
      id: 'sticky:recent',
      status: 'warn',
      message: `sticky sources live in xt_recent lists of ${max} sources per link: past that, the source least recently seen loses its stickiness`,
      remedy: 'use firewall: nftables (sets of 65535), or boot with xt_recent.ip_list_tot=N (module option, or kernel command line when built in)',
    },
  ];
}

/** The condition match when the rules do not use it: why, and what to install to use it. */
function conditionFallback(gw: GatewaySpec, facts: HostFacts): CheckResult[] {
  if (gw.failover === 'chain-swap') return [];
  const p = conditionPiece(facts.firewall.iptables);
  if (gw.failover === 'condition') return [checkPiece(p, facts.modules)];
  const s = pieceState(p, facts.modules);
  if (s.state === 'missing' || s.state === 'unknown') {
    return [{ id: 'netfilter:match:condition', status: 'ok', message: `condition match: ${s.detail}; failover uses chain-swap instead`, remedy: p.install! }];
  }
  return [];
}

function toolChecks(facts: HostFacts): CheckResult[] {
  const t = facts.firewall.iptables;
  const out: CheckResult[] = [];
  out.push(
    t?.version
      ? { id: 'tool:iptables', status: 'ok', message: `${t.version}, ${t.variant} backend` }
      : { id: 'tool:iptables', status: 'fail', message: 'iptables is not installed', remedy: 'install iptables (Debian: apt install iptables), or use firewall: nftables' },
  );
  if (t && t.otherVariantRules > 0) {
    const other = t.variant === 'nf_tables' ? 'legacy' : 'nf_tables';
    out.push({
      id: 'tool:iptables-backend',
      status: 'warn',
      message: `${t.otherVariantRules} rule(s) exist in the ${other} backend; the ${t.variant} backend lbprov uses does not see them, and both act on every packet`,
      remedy: `move those rules to the ${t.variant} backend or remove them (iptables-${other === 'legacy' ? 'legacy' : 'nft'}-save shows them)`,
    });
  }
  out.push(
    t?.restore
      ? { id: 'tool:iptables-restore', status: 'ok', message: 'iptables-restore supports --noflush' }
      : { id: 'tool:iptables-restore', status: 'fail', message: 'iptables-restore with --noflush is missing (lbprov changes iptables only through it)', remedy: 'install iptables (Debian: apt install iptables)' },
  );
  return out;
}
