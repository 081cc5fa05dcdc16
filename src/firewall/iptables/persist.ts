/**
 * What outlives a reboot for iptables: lbprov's chains, one iptables-restore --noflush payload per
 * table, with its jumps as `#jump` lines that the boot-time restore inserts only where
 * `iptables -C` does not find them (a second run leaves the same state).
 */
import { PERSIST_DIR } from '../../model/paths.js';
import type { Resource } from '../../model/resources.js';
import { ofKind } from '../../model/resources.js';
import type { BootPayload } from '../backend.js';

export function iptablesBootPayload(desired: readonly Resource[]): BootPayload {
  const chains = ofKind(desired, 'iptables-chain');
  const jumps = ofKind(desired, 'iptables-jump');
  const lines = [
    '# Managed by lbprov: its iptables chains, restored at boot by /etc/lbprov/restore.sh.',
    '# Each table is one iptables-restore --noflush payload: declaring a chain flushes only that chain.',
    '# "#jump" lines are its jumps from built-in chains; restore.sh inserts each one only where it is missing.',
  ];
  for (const table of [...new Set([...chains, ...jumps].map((r) => r.table))]) {
    const inTable = chains.filter((c) => c.table === table);
    lines.push(`*${table}`, ...inTable.map((c) => `:${c.chain} - [0:0]`));
    for (const c of inTable) lines.push(...c.rules.map((rule) => `-A ${c.chain} ${rule}`));
    lines.push(...jumps.filter((j) => j.table === table).map((j) => `#jump ${j.chain} ${j.rule}`), 'COMMIT');
  }
  return { path: `${PERSIST_DIR}/iptables.rules`, content: lines.join('\n') + '\n' };
}

/**
 * `restore_firewall FILE`. The payload is built in full before iptables-restore starts: it holds
 * the xtables lock that `iptables -C` waits for.
 */
export const IPTABLES_BOOT_RESTORE = `restore_firewall() {
	rules=$1
	[ -f "$rules" ] || return 0
	payload=$(
		set -f
		table=
		while IFS= read -r line; do
			case $line in
			'*'*)
				table=\${line#\\*}
				printf '%s\\n' "$line"
				;;
			'#jump '*)
				set -- \${line#\\#jump }
				chain=$1
				shift
				iptables -w 10 -t "$table" -C "$chain" "$@" 2>/dev/null || printf '%s\\n' "-I $chain 1 $*"
				;;
			'#'* | '') ;;
			*) printf '%s\\n' "$line" ;;
			esac
		done <"$rules"
	)
	printf '%s\\n' "$payload" | iptables-restore -w 10 --noflush || fail "iptables-restore of $rules failed"
}`;
