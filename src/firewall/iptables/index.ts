/**
 * The iptables backend: lbprov's LBPROV_* chains in the mangle and nat tables and the jumps into
 * them from built-in chains, read with iptables-save and changed with one iptables-restore
 * --noflush payload per table (works on both the nf_tables and the legacy iptables).
 */
import type { FirewallBackend } from '../backend.js';
import { modulePlanFor } from '../kernel-pieces.js';
import { iptablesChecks } from './checks.js';
import { iptablesFactsSections, readIptablesFacts } from './facts.js';
import { iptablesFromTemplate } from './fragment.js';
import { conditionMatchSource, piecesUsedBy } from './netfilter.js';
import { IPTABLES_SCHEMAS } from './schemas.js';
import { iptablesStickyCount, iptablesStickyFlush, iptablesView } from './policy.js';
import { IPTABLES_BOOT_RESTORE, iptablesBootPayload } from './persist.js';
import { IPTABLES_RESTORE, iptablesSteps } from './steps.js';

export const iptablesBackend: FirewallBackend = {
  name: 'iptables',
  kinds: ['iptables-chain', 'iptables-jump'],
  resourceSchemas: IPTABLES_SCHEMAS,
  factsSections: iptablesFactsSections,
  readFacts: readIptablesFacts,
  usable: (read) => {
    const s = read.section('iptables');
    return s && s.rc === 0 ? { usable: true, why: 'iptables-save works' } : { usable: false, why: `iptables-save failed: ${s?.stderr.trim() || 'not installed'}` };
  },
  resourcesFromTemplate: iptablesFromTemplate,
  applySteps: iptablesSteps,
  checks: iptablesChecks,
  modulePlan: (desired, modules, firewall) => modulePlanFor(piecesUsedBy(desired, firewall.iptables), modules),
  bootPayload: iptablesBootPayload,
  bootRestore: IPTABLES_BOOT_RESTORE,
  swapCommand: IPTABLES_RESTORE,
  templateView: iptablesView,
  stickyFlush: (link) => iptablesStickyFlush(link.index),
  stickyCount: (link) => iptablesStickyCount(link.index),
  conditionMatch: (modules, firewall) => conditionMatchSource(modules, firewall.iptables),
};

export { canonicalizeRule } from './canonical.js';
export { parseIptablesSave } from './save.js';
export { ownedIptablesResources } from './owned.js';
export { CONDITION_INSTALL } from './netfilter.js';
export { iptablesPayload } from './steps.js';
