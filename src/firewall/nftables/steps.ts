/**
 * Changes to lbprov's nftables table -> ONE `nft -f` transaction (checked first with `nft -c -f`):
 * sets are declared before any rule names them and deleted last, every chain that is created
 * exists before any rule refers to it, every changed chain is flushed
 * and refilled, every removed chain is emptied before any is deleted (one may jump to another), a
 * base chain whose hook or priority changes is deleted and declared again, and a removed table
 * goes with its chains. Nothing outside the table is named. The undo is the transaction of the
 * inverted changes.
 */
import type { ChangeOf, ResourceChange } from '../../model/changes.js';
import { ACTION_SYMBOLS, changesOfKind, invertChange, subjectOf } from '../../model/changes.js';
import { NFT_TABLE } from '../../model/ownership.js';
import type { IpFamily } from '../../model/resources.js';
import type { ApplyStep } from '../../model/steps.js';
import { pipeInto } from '../../remote/quote.js';
import { nftFamily } from './text.js';

export const NFT_LOAD = 'nft -f -';

type NftChange = ChangeOf<'nft-table'> | ChangeOf<'nft-chain'> | ChangeOf<'nft-set'>;

function nftChanges(changes: readonly ResourceChange[]): NftChange[] {
  return [...changesOfKind(changes, 'nft-table'), ...changesOfKind(changes, 'nft-set'), ...changesOfKind(changes, 'nft-chain')];
}

/** One `nft -f` payload for the changes of one family's table. */
export function nftPayload(family: IpFamily, changes: readonly NftChange[]): string {
  const t = `${nftFamily(family)} ${NFT_TABLE}`;
  const table = changesOfKind(changes, 'nft-table')[0];
  if (table?.action === 'delete') return `delete table ${t}\n`;
  const chains = changesOfKind(changes, 'nft-chain');
  const sets = changesOfKind(changes, 'nft-set');
  const lines = [`add table ${t}`];
  // Sets before the rules that name them; a changed one is declared again (its elements are run-time state).
  for (const x of sets) {
    if (x.action !== 'create' && x.action !== 'delete') lines.push(`delete set ${t} ${x.before.set}`);
    if (x.after) lines.push(`add set ${t} ${x.after.set} { ${x.after.declaration.map((d) => `${d};`).join(' ')} }`);
  }
  const declare = (name: string, header: string) => lines.push(header ? `add chain ${t} ${name} { ${header} }` : `add chain ${t} ${name}`);
  for (const c of chains) {
    if (c.action === 'create') declare(c.after.chain, c.after.header);
    else if (c.action !== 'delete' && c.before.header !== c.after.header) {
      lines.push(`delete chain ${t} ${c.before.chain}`);
      declare(c.after.chain, c.after.header);
    }
  }
  for (const c of chains) if ((c.action === 'update' || c.action === 'replace') && c.before.header === c.after.header) lines.push(`flush chain ${t} ${c.after.chain}`);
  for (const c of chains) if (c.after) for (const rule of c.after.rules) lines.push(`add rule ${t} ${c.after.chain} ${rule}`);
  const removed = chains.flatMap((c) => (c.action === 'delete' ? [c.before.chain] : []));
  for (const name of removed) lines.push(`flush chain ${t} ${name}`);
  for (const name of removed) lines.push(`delete chain ${t} ${name}`);
  // After every chain that named a removed set was flushed above (they changed with it).
  for (const x of sets) if (x.action === 'delete') lines.push(`delete set ${t} ${x.before.set}`);
  return lines.join('\n') + '\n';
}

/** Checked in the kernel without applying, then applied: a payload nft refuses changes nothing. */
function checkedLoad(payload: string): string {
  return `${pipeInto(payload, 'nft -c -f -')} && ${pipeInto(payload, NFT_LOAD)}`;
}

export function nftSteps(all: readonly ResourceChange[]): ApplyStep[] {
  const changes = nftChanges(all);
  const families = [...new Set(changes.map((c) => subjectOf(c).family))];
  return families.map((family) => {
    const ofFamily = changes.filter((c) => subjectOf(c).family === family);
    return {
      description: `nft ${nftFamily(family)} ${NFT_TABLE}: ${ofFamily.map((c) => `${ACTION_SYMBOLS[c.action]}${c.id.split(':').slice(1).join(':')}`).join(' ')}`,
      command: checkedLoad(nftPayload(family, ofFamily)),
      undo: checkedLoad(nftPayload(family, nftChanges(ofFamily.map(invertChange)))),
    };
  });
}
