/**
 * Changes to lbprov's chains and jumps -> one iptables-restore --noflush payload per table:
 * `:CHAIN` re-declares (and so flushes) exactly the chains that change; built-in chains are never
 * declared, so foreign rules in them are untouched. Atomic per table; the undo is the payload of
 * the inverted changes. Works on both the nf_tables and the legacy iptables.
 */
import type { ChangeOf, ResourceChange } from '../../model/changes.js';
import { ACTION_SYMBOLS, changesOfKind, invertChange, subjectOf } from '../../model/changes.js';
import type { IptablesTableName } from '../../model/resources.js';
import type { ApplyStep } from '../../model/steps.js';
import { pipeInto } from '../../remote/quote.js';
import { IPTABLES_TABLES } from './fragment.js';

export const IPTABLES_RESTORE = 'iptables-restore -w 10 --noflush';

type IptablesChange = ChangeOf<'iptables-chain'> | ChangeOf<'iptables-jump'>;

function iptablesChanges(changes: readonly ResourceChange[]): IptablesChange[] {
  return [...changesOfKind(changes, 'iptables-chain'), ...changesOfKind(changes, 'iptables-jump')];
}

export function iptablesSteps(all: readonly ResourceChange[]): ApplyStep[] {
  const changes = iptablesChanges(all);
  const steps: ApplyStep[] = [];
  for (const table of IPTABLES_TABLES) {
    const inTable = changes.filter((c) => subjectOf(c).table === table);
    if (inTable.length === 0) continue;
    steps.push({
      description: `iptables ${table}: ${inTable.map((c) => `${ACTION_SYMBOLS[c.action]}${c.id.split(':').slice(2).join(':')}`).join(' ')}`,
      command: pipeInto(iptablesPayload(table, inTable), IPTABLES_RESTORE),
      undo: pipeInto(iptablesPayload(table, iptablesChanges(inTable.map(invertChange))), IPTABLES_RESTORE),
    });
  }
  return steps;
}

/** One iptables-restore --noflush payload for the changes of one table. */
export function iptablesPayload(table: IptablesTableName, changes: readonly IptablesChange[]): string {
  const lines = [`*${table}`];
  const chains = changesOfKind(changes, 'iptables-chain');
  const jumps = changesOfKind(changes, 'iptables-jump');
  for (const c of chains) if (c.after) lines.push(`:${c.after.chain} - [0:0]`);
  for (const c of chains) if (c.after) for (const rule of c.after.rules) lines.push(`-A ${c.after.chain} ${rule}`);
  for (const c of jumps) {
    if (c.before) lines.push(`-D ${c.before.chain} ${c.before.rule}`);
    if (c.after) lines.push(`-I ${c.after.chain} 1 ${c.after.rule}`);
  }
  // Every removed chain is emptied before any is deleted: one may still jump to another.
  const removed = chains.flatMap((c) => (c.action === 'delete' ? [c.before.chain] : []));
  for (const name of removed) lines.push(`-F ${name}`);
  for (const name of removed) lines.push(`-X ${name}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}
