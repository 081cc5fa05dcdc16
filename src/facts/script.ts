/**
 * The whole current state of a gateway in one round trip: one POSIX shell script of sections
 * (remote/sections.ts): the core facts, the routing facts of each address family, and the
 * sections of the firewall backend the gateway uses (and of the one it is leaving).
 */
import type { FactsRequest } from '../model/facts.js';
import { IP_FAMILIES } from '../model/resources.js';
import { DONE_LINE, newMarker, PREAMBLE, sectionCall, sectionPrelude } from '../remote/sections.js';
import { routingFactsSections } from '../routing/index.js';
import { firewallFactsScript } from '../firewall/choice.js';
import { coreSections } from './core.js';

export interface FactsScript {
  marker: string;
  script: string;
}

export interface FactsScriptOptions {
  marker?: string;
  /** Runs first (the lock of `up`); its failure ends the script with its own exit code. */
  prelude?: string;
  /** See SectionScriptOptions.errorFile: an apply collects section stderr in its own folder. */
  errorFile?: string;
}

export function buildFactsScript(request: FactsRequest, opts: FactsScriptOptions = {}): FactsScript {
  const marker = opts.marker ?? newMarker();
  const [kernel, ...core] = coreSections(request);
  const lines = [
    PREAMBLE,
    opts.prelude ?? '',
    'kr=; read -r kr < /proc/sys/kernel/osrelease || kr=$(uname -r)',
    sectionPrelude({ marker, ...(opts.errorFile !== undefined ? { errorFile: opts.errorFile } : {}) }),
    sectionCall(...kernel!),
    ...IP_FAMILIES.map((family) => firewallFactsScript(request.firewall, request.firewallCandidates, family)),
    ...IP_FAMILIES.flatMap((family) => routingFactsSections(family, request.ranges).map(([name, cmd]) => sectionCall(name, cmd))),
    ...core.map(([name, cmd]) => sectionCall(name, cmd)),
    DONE_LINE,
  ];
  return { marker, script: lines.join('\n') + '\n' };
}
