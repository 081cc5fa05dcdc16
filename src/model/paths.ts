/** Every path lbprov reads or writes on a gateway, and the rule for which files it owns. */

export const ETC_DIR = '/etc/lbprov';
export const STATE_DIR = '/var/lib/lbprov';
export const LOG_DIR = '/var/log/lbprov';
/** The monitor's runtime files and the lock. */
export const RUN_DIR = '/run/lbprov';

/** The list of files lbprov placed, so a later run can remove those no longer wanted. */
export const MANIFEST_PATH = `${ETC_DIR}/manifest`;
/** The firewall backend lbprov uses on the gateway ("iptables" or "nftables"). */
export const FIREWALL_RECORD_PATH = `${ETC_DIR}/firewall`;
export const RESTORE_SCRIPT_PATH = `${ETC_DIR}/restore.sh`;
/** The inventory's hooks, run by the monitor on every link state change. */
export const HOOKS_DIR = `${ETC_DIR}/hooks`;
export const PERSIST_DIR = `${ETC_DIR}/persist`;
export const RT_TABLES_PATH = '/etc/iproute2/rt_tables.d/lbprov.conf';
export const MODULES_LOAD_PATH = '/etc/modules-load.d/lbprov.conf';
/** The unit that runs restore.sh at boot. */
export const RESTORE_UNIT = 'lbprov.service';
export const SYSTEMD_UNIT_PATH = `/etc/systemd/system/${RESTORE_UNIT}`;
/** The monitor's unit (playbooks/balancer.yml renders it as /etc/systemd/system/<this>). */
export const MONITOR_UNIT = 'lbprov-monitor.service';
/** A drop-in instead of the multi-user.target.wants symlink `systemctl enable` makes: a plain file, diffed like any other. */
export const SYSTEMD_WANTS_PATH = '/etc/systemd/system/multi-user.target.d/lbprov.conf';
export const SYSCTL_ORIGINAL_PATH = `${STATE_DIR}/sysctl.orig`;

export const LOCK_DIR = `${RUN_DIR}/lock`;
export const TXN_ROOT = `${STATE_DIR}/txn`;
export const AUDIT_LOG = `${LOG_DIR}/audit.log`;
export const MONITOR_STATE_PATH = `${RUN_DIR}/state`;
/** The monitor reads events from this FIFO; hooks write a line to it to make it look again. */
export const MONITOR_FIFO_PATH = `${RUN_DIR}/monitor.fifo`;
/** One file per interface, written by lbprov's dhclient exit hook: address= and router= of the lease. */
export const DHCP_LEASE_DIR = `${RUN_DIR}/dhcp`;
/** Sourced by ISC dhclient-script after every lease event (Debian's hook folder). */
export const DHCLIENT_HOOK_PATH = '/etc/dhcp/dhclient-exit-hooks.d/lbprov';

/** A service lbprov runs: /etc/lbprov/<name>.sh, /run/lbprov/<name>.pid and .revision. */
export const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export function serviceScriptPath(name: string): string {
  return `${ETC_DIR}/${name}.sh`;
}

/** The pidfile, worker pidfile and revision file of a service. */
export function serviceRunPath(name: string, what: 'pid' | 'worker.pid' | 'revision'): string {
  return `${RUN_DIR}/${name}.${what}`;
}

export function sysctlPath(key: string): string {
  // sysctl(8) writes dots in interface names as slashes; swap them back.
  return `/proc/sys/${key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'))}`;
}

export const SYSCTL_KEY = /^[a-z0-9_]+(\.[A-Za-z0-9_@/-]+)+$/;

/** Files a playbook may render: under lbprov's folders, or lbprov's own file in a shared folder. */
const PLAYBOOK_FILE =
  /^\/(etc\/lbprov|var\/lib\/lbprov|etc\/iproute2\/rt_tables\.d\/lbprov|etc\/modules-load\.d\/lbprov|etc\/systemd\/system\/lbprov|etc\/dhcp\/dhclient-exit-hooks\.d\/lbprov)[A-Za-z0-9_.\/-]*$/;

function plainSegments(path: string): boolean {
  return path.split('/').slice(1).every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

export function isPlaybookFile(path: string): boolean {
  return PLAYBOOK_FILE.test(path) && plainSegments(path);
}

/**
 * Every file lbprov owns on a gateway: what a playbook may render, plus the systemd drop-in that
 * persistence writes. No empty, `.` or `..` segment that could point it anywhere else.
 */
export function isOwnedFile(path: string): boolean {
  return (isPlaybookFile(path) || path === SYSTEMD_WANTS_PATH) && plainSegments(path);
}
