/** Strict schemas of the iptables kinds (see model/schema-helpers.ts). */
import { z } from 'zod';
import { IPTABLES_OWNED_CHAIN } from '../../model/ownership.js';
import { canonicalText, familySchema } from '../../model/schema-helpers.js';
import { canonicalizeRule } from './canonical.js';
import { BUILTIN_CHAINS, IPTABLES_TABLES } from './fragment.js';

const rule = canonicalText('iptables rule', canonicalizeRule);
const table = z.enum(IPTABLES_TABLES);

export const iptablesChainSchema = z.strictObject({
  kind: z.literal('iptables-chain'),
  id: z.string(),
  family: familySchema,
  table,
  chain: z.string().regex(IPTABLES_OWNED_CHAIN, 'an lbprov chain name (LBPROV_*)'),
  rules: z.array(rule).max(100_000),
});

export const iptablesJumpSchema = z
  .strictObject({
    kind: z.literal('iptables-jump'),
    id: z.string(),
    family: familySchema,
    table,
    chain: z.string(),
    rule: rule.refine((r) => / -j LBPROV_[A-Z0-9_]{1,20}$|^-j LBPROV_[A-Z0-9_]{1,20}$/.test(r), 'a jump into an lbprov chain'),
  })
  .refine((j) => BUILTIN_CHAINS[j.table].includes(j.chain), 'a built-in chain of its table');

export const IPTABLES_SCHEMAS = [iptablesChainSchema, iptablesJumpSchema] as const;
