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
import type { ApplyStep } from '../model/steps.js';
import { AUDIT_LOG, LOCK_DIR, LOG_DIR, TXN_ROOT } from '../model/paths.js';
import { shellQuote } from '../remote/quote.js';
import { PREAMBLE } from '../remote/sections.js';
import { buildApplyScript, buildUndoScript } from './script.js';

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

/**
 * Shell functions over the lock, builtins only (a first `up` on 100 gateways
 * spent more CPU in sed, cut and date here than in the apply itself):
 * `pstart PID` sets ps_ to the process's start time, so a reused pid is never
 * taken for the holder; `read_owner` sets opid, ostart, orun, octl, ocpid and
 * osince from the lock's owner file (all empty when there is none).
 */
export function lockFunctions(lockDir = LOCK_DIR): string {
  return [
    `lk=${shellQuote(lockDir)}`,
    'pstart() { ps_=; l_=; read -r l_ 2>/dev/null < /proc/$1/stat || return 0; set -- ${l_##*) }; [ $# -ge 20 ] && shift 19 && ps_=$1; }',
    'read_owner() { opid=; ostart=; orun=; octl=; ocpid=; osince=; [ -r "$lk/owner" ] || return 0; while IFS== read -r k_ v_; do case $k_ in pid) opid=$v_;; start) ostart=$v_;; run) orun=$v_;; controller) octl=$v_;; controller_pid) ocpid=$v_;; since) osince=$v_;; esac; done < "$lk/owner"; }',
    'write_owner() { printf "pid=%s\\nstart=%s\\nrun=%s\\ncontroller=%s\\ncontroller_pid=%s\\nsince=%s\\n" "$@" > "$lk/owner"; }',
  ].join('\n');
}

/** Sleeps between two looks at a lock held by someone else. */
const LOCK_POLL_S = 0.2;
/**
 * Looks at a lock folder without an owner before taking it over: mkdir and the
 * owner's write are two steps, and a holder may be between them.
 */
const OWNERLESS_LOOKS = 25;
/** The owner's pid once its run let go: the next run takes the lock at once. */
const RELEASED = 'released';

/** Claim tokens kept in the lock folder before the claimer clears them (one process every so many runs). */
const CLAIM_TOKENS_KEPT = 64;

/**
 * Shell that takes the gateway's lock, waiting up to waitS seconds. The lock
 * is a folder that stays; who holds it is its owner file. The holder is the
 * sshd process of this connection, so the lock lives exactly as long as the
 * connection (closing it releases the lock without another round trip) unless
 * an apply hands it to a process of its own.
 *
 * A lock whose holder is gone (pid and start time), or that its run released,
 * is claimed with a token named after that owner, created with noclobber (an
 * O_EXCL open: a builtin, no process): of two runs claiming the same owner,
 * one creates the token and the other sees it exists. The owner is read again
 * after the token is made, so a token made from a stale read claims nothing;
 * a token older than 10 s (its run died mid-claim) is removed. A folder without an owner (a run killed between making it and writing its
 * name) is taken after 5 s, under a guard folder.
 */
export function acquireLockScript(id: RunIdentity, waitS: number, opts: { lockDir?: string; now?: number } = {}): string {
  const lockDir = opts.lockDir ?? LOCK_DIR;
  const looks = Math.max(0, Math.ceil(waitS / LOCK_POLL_S));
  const parent = shellQuote(lockDir.replace(/\/[^/]+$/, '') || '/');
  const claim = `pstart $holder; write_owner "$holder" "$ps_" "$run" ${shellQuote(id.controller)} ${id.controllerPid} ${Math.floor((opts.now ?? Date.now()) / 1000)}`;
  return [
    lockFunctions(lockDir),
    `run=${id.run}`,
    // The connection's sshd: the first ancestor whose name starts with sshd (sshd-session since OpenSSH 9.8).
    'holder=$$; p=$$; while [ "$p" -gt 1 ] 2>/dev/null; do l_=; read -r l_ 2>/dev/null < /proc/$p/stat || break; c_=${l_#*(}; case ${c_%) *} in sshd*) holder=$p; break;; esac; set -- ${l_##*) }; p=$2; done',
    // A claim token or guard left by a run killed while claiming: a claim takes a moment, never 10 s.
    'left_behind() { [ $(( $(date +%s) - $(stat -c %Y "$1" 2>/dev/null || date +%s) )) -gt 10 ]; }',
    'n=0; ownerless=0',
    'while :; do',
    `  if [ ! -d "$lk" ]; then [ -d ${parent} ] || mkdir -p ${parent}; if mkdir "$lk" 2>/dev/null; then ${claim}; break; fi; fi`,
    '  read_owner',
    '  [ "$orun" = "$run" ] && break',
    '  token=',
    `  if [ "$opid" = ${RELEASED} ]; then token=claim.$opid.$ostart`,
    '  elif [ -n "$opid" ]; then ownerless=0; pstart "$opid"; [ "$ps_" != "$ostart" ] && token=claim.$opid.$ostart',
    `  else ownerless=$((ownerless + 1)); fi`,
    '  if [ -n "$token" ]; then',
    '    set -C; if printf "" 2>/dev/null > "$lk/$token"; then set +C',
    `      o1=$opid; s1=$ostart; read_owner; if [ "$opid" = "$o1" ] && [ "$ostart" = "$s1" ]; then ${claim}; set -- "$lk"/claim.*; [ $# -gt ${CLAIM_TOKENS_KEPT} ] && rm -f "$@"; break; fi`,
    '    fi; set +C',
    '    if left_behind "$lk/$token"; then rm -f "$lk/$token"; continue; fi',
    `  elif [ $ownerless -ge ${OWNERLESS_LOOKS} ] && mkdir "$lk/claim" 2>/dev/null; then`,
    `    read_owner; if [ -z "$opid" ]; then ${claim}; rmdir "$lk/claim"; break; fi; rmdir "$lk/claim"; ownerless=0; continue`,
    '  fi',
    '  if [ -d "$lk/claim" ] && left_behind "$lk/claim"; then rmdir "$lk/claim" 2>/dev/null; fi',
    `  if [ $n -ge ${looks} ]; then printf "@@lbprov-locked "; tr "\\n" " " 2>/dev/null < "$lk/owner"; echo; exit ${EXIT_LOCKED}; fi`,
    `  n=$((n + 1)); sleep ${LOCK_POLL_S}`,
    'done',
  ].join('\n');
}

/** Hands the lock to pid $1 (a detached apply or the confirm timer) if this run owns it. */
function handLockScript(id: RunIdentity): string {
  return `hand_lock() { read_owner; if [ "$orun" = ${id.run} ]; then pstart $1; write_owner "$1" "$ps_" "$orun" "$octl" "$ocpid" "$osince"; fi; }`;
}

export function releaseLockScript(id: RunIdentity): string {
  // The releasing run in the start field: the next claim's token is new for every release.
  return `read_owner; if [ "$orun" = ${id.run} ]; then write_owner ${RELEASED} ${id.run} "" "$octl" "$ocpid" "$osince"; fi`;
}

/** Appends one JSON line to the gateway's audit log: the controller's record plus time, origin and result. */
function auditFunction(record: object): string {
  // The origin is the first word of SSH_CLIENT, kept only if it looks like an address.
  return `audit() { [ -d ${LOG_DIR} ] || mkdir -p ${LOG_DIR}; from=\${SSH_CLIENT%% *}; case "$from" in *[!0-9a-fA-F.:]*) from=;; esac; printf '{"time":"%s","from":"%s","result":"%s","record":%s}\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$from" "$1" ${shellQuote(JSON.stringify(record))} >> ${AUDIT_LOG}; }`;
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

/** Past this many transaction folders the oldest are pruned down to TXN_KEPT (pruning costs processes: not every run). */
const TXN_PRUNE_AT = 40;
const TXN_KEPT = 20;

export function buildTransaction(opts: TransactionOptions): Transaction {
  const { id } = opts;
  const dir = txnDir(id);
  const common = [lockFunctions(), handLockScript(id), auditFunction(opts.record)].join('\n');
  // The timer is a subshell of the apply: it shares the apply's process group (the apply leads its
  // own session), which a confirm kills, sleep included. No script or shell of its own to start.
  const timer = [
    `( sleep ${opts.confirmTimeoutS ?? 0}`,
    // mkdir decides atomically between this timer and a late confirm.
    `  if mkdir "$t/decided" 2>/dev/null; then ${REVERT}; ${releaseLockScript(id)}; fi`,
    ') </dev/null >/dev/null 2>&1 &',
  ].join('\n');
  const onSuccess = [
    'audit applied',
    opts.confirmTimeoutS === null
      ? `echo applied > "$t/result"; ${releaseLockScript(id)}`
      : `${timer}\ntp=$!; echo "$$" > "$t/timer.pgid"; hand_lock "$tp"; echo pending > "$t/result"`,
  ].join('\n');
  const onFailure = ['echo rolled-back > "$t/result"', 'audit rolled-back', releaseLockScript(id)].join('\n');
  const apply = buildApplyScript(opts.steps, { verifyScript: opts.verifyScript, onSuccess, onFailure, errorFile: '"$t/step.err"' });
  const applyFile = [`t=${dir}`, common, 'hand_lock $$', apply.script].join('\n');
  const script = [
    PREAMBLE,
    `t=${dir}`,
    'mkdir -p "$t" || exit 91',
    // Keep the last transactions for post-mortems.
    `set -- ${TXN_ROOT}/*/; if [ $# -gt ${TXN_PRUNE_AT} ]; then ls -1dt ${TXN_ROOT}/*/ | tail -n +${TXN_KEPT + 1} | while read -r old; do rm -rf "$old"; done; fi`,
    // printf is a builtin and shellQuote keeps any text literal: no process per file.
    `printf '%s' ${shellQuote(applyFile)} > "$t/apply.sh"`,
    `printf '%s' ${shellQuote(buildUndoScript(opts.steps))} > "$t/undo.sh"`,
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
    PREAMBLE,
    `t=${txnDir(id)}`,
    lockFunctions(),
    auditFunction({ run: id.run, by: id.controller }),
    // A first connection lost mid-apply: the detached apply may still run (its output file exists
    // from its start, its result file from its end).
    'i=0; while [ -e "$t/out" ] && [ ! -s "$t/result" ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done',
    'r=; read -r r 2>/dev/null < "$t/result"',
    // Only an armed timer leaves something to decide: an apply that rolled back (its output lost
    // with the first connection) or ran without a timer is never undone again.
    'if [ "$r" = pending ] && mkdir "$t/decided" 2>/dev/null; then',
    // The timer's process group, its sleep included.
    '  tg=; read -r tg 2>/dev/null < "$t/timer.pgid"; case "$tg" in ""|*[!0-9]*) ;; *) kill -TERM -"$tg" 2>/dev/null;; esac',
    `  ${action}`,
    `  ${releaseLockScript(id)}`,
    '  printf "decided "',
    'else',
    // The timer got there first (nobody confirmed in time): wait for the end of its revert, which
    // rewrites the result file (read between its truncation and its write, it would be empty).
    `  i=0; while [ $i -lt ${TIMER_RESULT_POLLS} ]; do r=; read -r r 2>/dev/null < "$t/result"; case $r in ${FINAL_RESULTS.join('|')}) break;; esac; sleep 0.2; i=$((i + 1)); done`,
    '  printf "already "',
    'fi',
    'r=; read -r r 2>/dev/null < "$t/result"; printf "%s\\n" "$r"',
  ].join('\n');
}

/** What a transaction ends as, once decided: the words its result file then holds. */
const FINAL_RESULTS = ['confirmed', 'reverted', 'revert-failed', 'rolled-back', 'applied'] as const;
/** Polls (0.2 s each) for the timer's revert to finish: undoing takes what applying took, never a minute. */
const TIMER_RESULT_POLLS = 300;

export interface Decision {
  /**
   * Who decided: this controller now, the gateway's timer before it came back, or nobody (the
   * apply rolled back by itself, or ran without a timer: its output was lost with the connection).
   */
  by: 'controller' | 'timer' | 'apply';
  /** The result file then: confirmed, reverted, revert-failed, rolled-back, applied; pending or empty while undecided. */
  result: string;
}

/** The output of a decision script; null when it is not one (cut or garbled: the decision is unknown). */
export function parseDecision(stdout: string): Decision | null {
  const m = /^(decided|already) ?([a-z-]*)$/.exec(stdout.trim().split('\n').pop() ?? '');
  if (!m) return null;
  const result = m[2]!;
  if (m[1] === 'decided') return { by: 'controller', result };
  return { by: result === 'rolled-back' || result === 'applied' ? 'apply' : 'timer', result };
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
