/** What lbprov owns on a gateway, beyond its LBPROV_* chains and its files. */
import type { GatewaySpec } from '../model/inventory.js';

/** A service lbprov runs: /etc/lbprov/<name>.sh, /run/lbprov/<name>.pid and .revision. */
export const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export interface OwnedRanges {
  priorityFirst: number;
  priorityLast: number;
  tables: Set<number>;
}

/** Rule priorities [base, base+99]; tables base+1 .. base+16 (room for links added later). */
export function ownedRanges(gw: GatewaySpec): OwnedRanges {
  const tables = new Set<number>();
  for (let i = 1; i <= 16; i++) tables.add(gw.tableBase + i);
  return { priorityFirst: gw.priorityBase, priorityLast: gw.priorityBase + 99, tables };
}
