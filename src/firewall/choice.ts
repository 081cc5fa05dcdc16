/**
 * Which backend a gateway uses. `iptables` or `nftables` in the inventory decides; `auto` keeps
 * the backend lbprov already uses there (its record, /etc/lbprov/firewall; a gateway set up before
 * the record existed has a manifest and used iptables), and on a gateway without lbprov takes the
 * first backend whose tool is installed and works with the kernel, iptables last.
 *
 * The facts script decides in shell which backends' sections run (the chosen one, and the
 * recorded one while migrating away from it); chooseBackend reaches the same decision from what
 * those sections printed, so a backend whose sections did not run is never used.
 */
import type { FirewallBackendName, FirewallSetting } from '../model/inventory.js';
import { FIREWALL_BACKENDS as BACKEND_NAMES } from '../model/inventory.js';
import type { IpFamily } from '../model/resources.js';
import { FIREWALL_RECORD_PATH, MANIFEST_PATH } from '../model/paths.js';
import { parseKeyValues, sectionCall, type SectionReader } from '../remote/sections.js';
import type { FirewallBackend } from './backend.js';
import { FIREWALL_BACKENDS } from './index.js';

export const FIREWALL_SECTION = 'firewall';

function sectionsOf(b: FirewallBackend, family: IpFamily, onProbe = ''): string[] {
  return b.factsSections(family).map(([name, cmd]) => sectionCall(name, cmd) + (onProbe && b.autoProbe?.section === name ? `\n${onProbe}` : ''));
}

/** Shell for the facts script: the record, then the sections of every backend it needs. */
export function firewallFactsScript(setting: FirewallSetting, candidates: readonly FirewallBackendName[], family: IpFamily): string {
  const names = BACKEND_NAMES.join('|');
  const lines = [
    `fw_rec=; read -r fw_rec 2>/dev/null < ${FIREWALL_RECORD_PATH}`,
    `case "$fw_rec" in ${names}) ;; *) fw_rec=; [ -r ${MANIFEST_PATH} ] && fw_rec=iptables;; esac`,
    `fw=${setting}; [ "$fw" = auto ] && fw=$fw_rec`,
    sectionCall(FIREWALL_SECTION, 'echo "recorded=$fw_rec"'),
  ];
  for (const b of FIREWALL_BACKENDS) lines.push(`case " $fw $fw_rec " in *" ${b.name} "*)`, ...sectionsOf(b, family), ';; esac');
  // auto on a gateway without lbprov: the first candidate that works, else the last one.
  lines.push('if [ -z "$fw" ]; then');
  const eligible = autoCandidates(candidates);
  for (const b of eligible) {
    if (b.autoProbe && b !== eligible[eligible.length - 1]) lines.push(`  if [ -z "$fw" ] && ${b.autoProbe.present}; then`, ...sectionsOf(b, family, `[ "$rc" = 0 ] && fw=${b.name}`), '  fi');
    else lines.push('  if [ -z "$fw" ]; then', ...sectionsOf(b, family), `  fw=${b.name}; fi`);
  }
  lines.push('fi');
  return lines.join('\n');
}

export interface BackendChoice {
  recorded: FirewallBackendName | null;
  chosen: FirewallBackend;
  reason: string;
}

function recordedBackend(read: SectionReader): FirewallBackendName | null {
  const value = parseKeyValues(read.section(FIREWALL_SECTION)?.body ?? '').recorded;
  return BACKEND_NAMES.find((n) => n === value) ?? null;
}

/** The backends `auto` tries, in order: those the playbook renders, the last one taken without a probe. */
function autoCandidates(candidates: readonly FirewallBackendName[]): FirewallBackend[] {
  return FIREWALL_BACKENDS.filter((b) => candidates.includes(b.name));
}

export function chooseBackend(setting: FirewallSetting, candidates: readonly FirewallBackendName[], read: SectionReader): BackendChoice {
  const recorded = recordedBackend(read);
  const byName = (name: FirewallBackendName) => FIREWALL_BACKENDS.find((b) => b.name === name);
  if (setting !== 'auto') {
    const chosen = byName(setting);
    if (!chosen) throw new Error(`no firewall backend ${setting}`);
    const moving = recorded && recorded !== setting ? `; moving from ${recorded}: its objects are removed in the same apply` : '';
    return { recorded, chosen, reason: `firewall: ${setting} (set in the inventory)${moving}` };
  }
  const kept = recorded ? byName(recorded) : undefined;
  if (kept) return { recorded, chosen: kept, reason: `firewall: ${kept.name} (auto: lbprov already uses it on this gateway)` };
  const skipped: string[] = [];
  const eligible = autoCandidates(candidates);
  for (const b of eligible) {
    if (!b.autoProbe || b === eligible[eligible.length - 1]) {
      return { recorded, chosen: b, reason: `firewall: ${b.name} (auto: no lbprov on this gateway yet${skipped.length ? `; ${skipped.join('; ')}` : ''})` };
    }
    const probe = read.section(b.autoProbe.section);
    if (!probe) {
      skipped.push(`${b.name} is not installed`);
      continue;
    }
    const { usable, why } = b.usable(read);
    if (usable) return { recorded, chosen: b, reason: `firewall: ${b.name} (auto: no lbprov on this gateway yet, and ${why})` };
    skipped.push(`${b.name} cannot be used: ${why}`);
  }
  throw new Error('the playbook renders no firewall backend');
}
