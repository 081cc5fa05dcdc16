/**
 * What `down` removes that the resource diff cannot see: the stopped monitor's runtime files (its
 * last view of link health would shape the next up), lbprov's emptied folders and, on systemd,
 * the removed units in systemd's memory. The lock, the apply records (/var/lib/lbprov/txn) and
 * the monitor's log stay.
 */
import { ETC_DIR, MONITOR_STATE_PATH, MONITOR_UNIT, PERSIST_DIR, RESTORE_UNIT, RUN_DIR } from '../model/paths.js';
import { shellQuote } from '../remote/quote.js';

const UNITS = `${RESTORE_UNIT} ${MONITOR_UNIT}`;

export function leftoversScript(services: readonly string[]): string {
  const runtime = services.map((name) => `${shellQuote(`${RUN_DIR}/${name}`)}.*`);
  return [
    `rm -rf ${shellQuote(MONITOR_STATE_PATH)} ${runtime.join(' ')}`,
    `rmdir ${PERSIST_DIR} ${ETC_DIR} 2>/dev/null`,
    // The units' files are gone: stopped (lbprov.service stays "active" after its run) and
    // reloaded, systemd forgets them instead of listing them "not-found".
    `if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl stop ${UNITS} 2>/dev/null; systemctl daemon-reload; systemctl reset-failed ${UNITS} 2>/dev/null; fi`,
    'true',
  ].join('\n');
}
