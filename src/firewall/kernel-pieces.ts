/**
 * Where a kernel piece a backend's objects use (a match, a target, a table, an nft expression)
 * is on the gateway: loaded, built in, registered, loadable, or missing. Kernels differ: one
 * without module support has no /proc/modules and no /lib/modules, and what it has shows only
 * in what the backend itself can see (iptables' /proc/net lists, a table nft could load).
 */
import type { CheckResult, ModulePlan } from '../model/checks.js';
import type { ModuleFacts } from '../model/facts.js';

export interface KernelPiece {
  /** "match:statistic", "target:MASQUERADE", "table:nat", "expression:numgen". */
  id: string;
  /** What a person reads: "statistic match", "nat table (nft_chain_nat)". */
  label: string;
  /** Modules that provide it, preferred first (older kernels name some differently). */
  modules: string[];
  /** Kernel option to ask for when no module provides it. */
  config: string;
  /** What to install when it is missing, when that is a package rather than a kernel option. */
  install?: string;
  /** What lbprov does without it, when there is a fallback. */
  fallback?: string;
  /** Where the backend sees it in the running kernel without a module name (null: it cannot tell). */
  registered: string | null;
  /** On a kernel without loadable modules, what the backend could tell about it. */
  withoutModules: { present: boolean; detail: string };
}

export type PieceState =
  | { state: 'registered' | 'loaded' | 'builtin'; module?: string; detail: string }
  | { state: 'loadable'; module: string; detail: string }
  | { state: 'unknown' | 'missing'; detail: string };

/** Loaded and built in say more than registered, so they are asked first. */
export function pieceState(p: KernelPiece, modules: ModuleFacts): PieceState {
  const loaded = p.modules.find((m) => modules.loaded?.includes(m));
  if (loaded) return { state: 'loaded', module: loaded, detail: `module ${loaded} is loaded` };
  const builtin = p.modules.find((m) => modules.builtin?.includes(m));
  if (builtin) return { state: 'builtin', module: builtin, detail: `${builtin} is built into the kernel (modules.builtin)` };
  if (p.registered) return { state: 'registered', detail: p.registered };
  const available = p.modules.find((m) => modules.available?.includes(m));
  if (available) return { state: 'loadable', module: available, detail: `module ${available} is installed but not loaded` };
  const noModuleSupport = modules.loaded === null && modules.builtin === null && modules.available === null;
  if (noModuleSupport) {
    // Without module support everything the kernel has is built in and there at boot.
    return p.withoutModules.present ? { state: 'builtin', detail: p.withoutModules.detail } : { state: 'missing', detail: p.withoutModules.detail };
  }
  if (modules.available === null) {
    return { state: 'unknown', detail: `not loaded, and /lib/modules/<kernel> is absent, so whether ${p.modules.join(' or ')} could be loaded is unknown` };
  }
  return { state: 'missing', detail: `not loaded, not built in, no ${p.modules.join(' or ')} module under /lib/modules/<kernel>` };
}

function remedyFor(p: KernelPiece): string {
  const install = p.install ?? `a kernel with ${p.config} (module ${p.modules[0]}), e.g. the distribution's standard kernel`;
  return p.fallback ? `${install}; ${p.fallback}` : install;
}

export function checkPiece(p: KernelPiece, modules: ModuleFacts): CheckResult {
  const id = `netfilter:${p.id}`;
  const s = pieceState(p, modules);
  switch (s.state) {
    case 'registered':
    case 'loaded':
    case 'builtin':
      return { id, status: 'ok', message: `${p.label}: ${s.detail}` };
    case 'loadable':
      return { id, status: 'fix', message: `${p.label}: ${s.detail}; the plan loads it (load ${s.module})` };
    case 'unknown':
      return { id, status: 'warn', message: `${p.label}: ${s.detail}`, remedy: `check that ${p.modules[0]} exists for this kernel (modinfo ${p.modules[0]})` };
    case 'missing':
      return { id, status: 'fail', message: `${p.label}: ${s.detail}`, remedy: remedyFor(p) };
  }
}

export function modulePlanFor(pieces: readonly KernelPiece[], modules: ModuleFacts): ModulePlan {
  const load = new Set<string>();
  const persist = new Set<string>();
  for (const p of pieces) {
    const s = pieceState(p, modules);
    if (s.state === 'loadable') load.add(s.module);
    if ((s.state === 'loadable' || s.state === 'loaded') && s.module) persist.add(s.module);
  }
  return { load: [...load].sort(), persist: [...persist].sort() };
}
