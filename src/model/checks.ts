/** The outcome of one prerequisite check on one gateway. Plain data. */

/**
 * ok: nothing to do. warn: works, but the admin should know. fix: not as
 * needed yet, and the plan fixes it (a module load, a sysctl). fail: the
 * gateway cannot run the balancer; nothing is changed on it.
 */
export type CheckStatus = 'ok' | 'warn' | 'fix' | 'fail';

export interface CheckResult {
  /** What was checked: "netfilter:match:statistic", "tool:conntrack", "interface:wan1". */
  id: string;
  status: CheckStatus;
  message: string;
  /** What to install or change, when the status is not ok (or when an ok has a better option). */
  remedy?: string;
}

/** Kernel modules the rendered firewall needs. */
export interface ModulePlan {
  /** Installed but not loaded: the plan loads them. */
  load: string[];
  /** Every module (not built in) the rules use: loaded at boot from /etc/modules-load.d/lbprov.conf. */
  persist: string[];
}
