/**
 * The safety net around an apply, all of it on the gateway so it holds when
 * the controller's connection does not:
 * - a lock (one lbprov run per gateway), held by a process on the gateway and
 *   taken over when that process is gone;
 * - the apply runs detached from the SSH session, so a dropped connection
 *   cannot stop it half-way (it completes or rolls back by itself);
 * - after a successful apply a timer reverts every step unless the controller
 *   comes back over a new connection and confirms;
 * - an audit record per apply, confirm and revert.
 * Everything here builds shell text; nothing runs locally.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { shellQuote } from '../ssh/quote.js';
import { buildApplyScript, buildUndoScript } from './script.js';
import type { ApplyStep } from './steps.js';

export const LOCK_DIR = '/run/lbprov/lock';
export const TXN_ROOT = '/var/lib/lbprov/txn';
export const AUDIT_LOG = '/var/log/lbprov/audit.log';
/** Exit code of a facts script that could not get the lock in time. */
export const EXIT_LOCKED = 75;

export interface RunIdentity {
  /** Random per CLI invocation: the lock is re-entrant for the same run (the confirm connection). */
  run: string;
  /** user@host of the controller, for lock owners and audit records. */
  controller: string;
  controllerPid: number;
}

export function newRunIdentity(): RunIdentity {
  const user = safeToken(userInfo().username);
  return { run: randomBytes(6).toString('hex'), controller: `${user}@${safeToken(hostname())}`, controllerPid: process.pid };
}

function safeToken(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'unknown';
}

export function txnDir(id: RunIdentity): string {
  return `${TXN_ROOT}/${id.run}`;
}

/** `pstart PID`: the process's start time, so a reused pid is never taken for the holder. */
const PROCESS_START = 'pstart() { sed "s/.*) //" /proc/$1/stat 2>/dev/null | cut -d" " -f20; }';

/**
 * Shell that takes the gateway's lock, waiting up to waitS seconds. The holder
 * is the sshd process of this connection, so the lock lives exactly as long as
 * the connection (closing it releases the lock without another round trip)
 * unless an apply hands it to a process of its own. A lock whose holder is
 * gone is simply taken.
 */
export function acquireLockScript(id: RunIdentity, waitS: number): string {
  return [
    `lk=${LOCK_DIR}; run=${id.run}`,
    'mkdir -p /run/lbprov',
    PROCESS_START,
    'holder=$$; p=$$; while [ "$p" -gt 1 ] 2>/dev/null; do case "$(cat /proc/$p/comm 2>/dev/null)" in sshd*) holder=$p; break;; esac; p=$(sed "s/.*) //" /proc/$p/stat 2>/dev/null | cut -d" " -f2); [ -n "$p" ] || break; done',
    `deadline=$(( $(date +%s) + ${Math.max(0, Math.floor(waitS))} ))`,
    'while :; do',
    `  if mkdir "$lk" 2>/dev/null; then printf "pid=%s\nstart=%s\nrun=%s\ncontroller=%s\ncontroller_pid=%s\nsince=%s\n" "$holder" "$(pstart $holder)" "$run" ${shellQuote(id.controller)} ${id.controllerPid} "$(date +%s)" > "$lk/owner"; break; fi`,
    '  opid=$(sed -n "s/^pid=//p" "$lk/owner" 2>/dev/null); ostart=$(sed -n "s/^start=//p" "$lk/owner" 2>/dev/null); orun=$(sed -n "s/^run=//p" "$lk/owner" 2>/dev/null)',
    '  [ "$orun" = "$run" ] && break',
    // A guard dir keeps two runs from taking the same dead lock at once.
    '  if { [ -z "$opid" ] || [ "$(pstart "$opid")" != "$ostart" ]; } && mkdir "$lk.takeover" 2>/dev/null; then',
    '    o2=$(sed -n "s/^pid=//p" "$lk/owner" 2>/dev/null); [ "$o2" = "$opid" ] && rm -rf "$lk"; rmdir "$lk.takeover"; continue',
    '  fi',
    '  if [ -d "$lk.takeover" ] && [ $(( $(date +%s) - $(stat -c %Y "$lk.takeover" 2>/dev/null || date +%s) )) -gt 10 ]; then rmdir "$lk.takeover" 2>/dev/null; fi',
    `  if [ "$(date +%s)" -ge "$deadline" ]; then printf "@@lbprov-locked "; tr "\n" " " < "$lk/owner" 2>/dev/null; echo; exit ${EXIT_LOCKED}; fi`,
    '  sleep 0.2',
    'done',
  ].join('\n');
}

/** Hands the lock to pid $1 (a detached apply or the confirm timer) if this run owns it. */
function handLockScript(id: RunIdentity): string {
  return [
    PROCESS_START,
    `hand_lock() { if [ "$(sed -n "s/^run=//p" ${LOCK_DIR}/owner 2>/dev/null)" = ${id.run} ]; then sed -i "s/^pid=.*/pid=$1/; s/^start=.*/start=$(pstart $1)/" ${LOCK_DIR}/owner; fi; }`,
  ].join('\n');
}

export function releaseLockScript(id: RunIdentity): string {
  return `if [ "$(sed -n "s/^run=//p" ${LOCK_DIR}/owner 2>/dev/null)" = ${id.run} ]; then rm -rf ${LOCK_DIR}; fi`;
}

/** Appends one JSON line to the gateway's audit log: the controller's record plus time, origin and result. */
function auditFunction(record: object): string {
  // The origin is the first word of SSH_CLIENT, kept only if it looks like an address.
  return `audit() { [ -d /var/log/lbprov ] || mkdir -p /var/log/lbprov; from=\${SSH_CLIENT%% *}; case "$from" in *[!0-9a-fA-F.:]*) from=;; esac; printf '{"time":"%s","from":"%s","result":"%s","record":%s}\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$from" "$1" ${shellQuote(JSON.stringify(record))} >> ${AUDIT_LOG}; }`;
}

const REVERT = 'if sh "$t/undo.sh" > "$t/undo.out" 2>&1; then echo reverted > "$t/result"; audit reverted; else echo revert-failed > "$t/result"; audit revert-failed; fi';

export interface TransactionOptions {
  id: RunIdentity;
  steps: readonly ApplyStep[];
  verifyScript: string;
  /** Seconds before an unconfirmed apply reverts itself; null applies without a timer. */
  confirmTimeoutS: number | null;
  /** What the audit log records about this apply (gateway, change ids). */
  record: object;
}

export interface Transaction {
  marker: string;
  /** Sent as the stdin of `sh -s`: starts the detached apply and relays its output. */
  script: string;
}

export function buildTransaction(opts: TransactionOptions): Transaction {
  const { id } = opts;
  const dir = txnDir(id);
  const common = [handLockScript(id), auditFunction(opts.record)].join('\n');
  const timer = [
    'LC_ALL=C; export LC_ALL; PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH',
    common,
    `t=${dir}`,
    `end=$(( $(date +%s) + ${opts.confirmTimeoutS ?? 0} ))`,
    'while [ "$(date +%s)" -lt "$end" ] && [ ! -e "$t/decided" ]; do sleep 0.2; done',
    // mkdir decides atomically between this timer and a late confirm.
    'if mkdir "$t/decided" 2>/dev/null; then',
    `  ${REVERT}`,
    `  ${releaseLockScript(id)}`,
    'fi',
  ].join('\n');
  const onSuccess = [
    'audit applied',
    opts.confirmTimeoutS === null
      ? `echo applied > "$t/result"; ${releaseLockScript(id)}`
      : 'setsid sh "$t/timer.sh" </dev/null >/dev/null 2>&1 & tp=$!; echo "$tp" > "$t/timer.pid"; hand_lock "$tp"; echo pending > "$t/result"',
  ].join('\n');
  const onFailure = ['echo rolled-back > "$t/result"', 'audit rolled-back', releaseLockScript(id)].join('\n');
  const apply = buildApplyScript(opts.steps, { verifyScript: opts.verifyScript, onSuccess, onFailure });
  const applyFile = [`t=${dir}`, common, 'hand_lock $$', apply.script, 'touch "$t/finished"'].join('\n');
  const script = [
    'LC_ALL=C; export LC_ALL; PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH',
    `t=${dir}`,
    'mkdir -p "$t" || exit 91',
    // Keep the last 20 transactions for post-mortems.
    `ls -1dt ${TXN_ROOT}/*/ 2>/dev/null | tail -n +21 | while read -r old; do rm -rf "$old"; done`,
    `printf '%s' ${shellQuote(b64(applyFile))} | base64 -d > "$t/apply.sh"`,
    `printf '%s' ${shellQuote(b64(buildUndoScript(opts.steps)))} | base64 -d > "$t/undo.sh"`,
    `printf '%s' ${shellQuote(b64(timer))} | base64 -d > "$t/timer.sh"`,
    // Its own session: a dropped SSH connection (SIGHUP to this one) does not reach it.
    'setsid sh "$t/apply.sh" </dev/null >"$t/out" 2>&1 &',
    'ap=$!',
    // setsid execs in place (a background job leads no process group), so the apply is our child.
    'wait "$ap"',
    'cat "$t/out"',
  ].join('\n');
  return { marker: apply.marker, script: script + '\n' };
}

/**
 * The controller's decision on a pending transaction. mkdir makes the timer
 * and the controller agree on who decides; the loser changes nothing.
 */
function decisionScript(id: RunIdentity, action: string): string {
  return [
    'LC_ALL=C; export LC_ALL; PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH',
    `t=${txnDir(id)}`,
    auditFunction({ run: id.run, by: id.controller }),
    'if mkdir "$t/decided" 2>/dev/null; then',
    '  kill "$(cat "$t/timer.pid" 2>/dev/null)" 2>/dev/null',
    `  ${action}`,
    `  ${releaseLockScript(id)}`,
    '  printf "decided "',
    'else',
    // The timer got there first: it reverted because nobody confirmed in time.
    '  printf "already "',
    'fi',
    'cat "$t/result" 2>/dev/null',
  ].join('\n');
}

/** Run on the new connection once the controller has verified the state. */
export function confirmScript(id: RunIdentity): string {
  return decisionScript(id, 'echo confirmed > "$t/result"; audit confirmed');
}

/** Reverts now (the state after apply did not match the plan). */
export function revertNowScript(id: RunIdentity): string {
  return decisionScript(id, REVERT);
}

/** What became of a transaction, read after the controller lost the gateway for a while. */
export function resultScript(id: RunIdentity): string {
  return `cat ${txnDir(id)}/result 2>/dev/null; true`;
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
