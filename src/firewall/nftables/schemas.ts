/** Strict schemas of the nftables kinds (see model/schema-helpers.ts). */
import { z } from 'zod';
import { NFT_TABLE } from '../../model/ownership.js';
import { familySchema } from '../../model/schema-helpers.js';
import { NFT_BASE_CHAIN, NFT_CHAIN_NAME, NFT_SET_LINE, NFT_SET_NAME } from './text.js';

/**
 * A rule as lbprov's table holds it: one line, balanced braces, nothing nft would read as a second
 * statement or a variable (`;`, `$`, a backslash), outside a quoted string. It reaches nft inside
 * an `add rule` line, as part of one single-quoted shell word.
 */
export function isNftRule(rule: string): boolean {
  const unquoted = rule.replace(/"[^"\n]*"/g, '""');
  if (/[\u0000-\u001f\u007f;$\\`]/.test(unquoted)) return false;
  if (/^(table|chain|type|add|delete|flush|insert|replace|create|list|define|include)\b/.test(rule) || rule !== rule.trim() || /\s{2}/.test(unquoted)) return false;
  let depth = 0;
  for (const ch of unquoted) {
    if (ch === '{') depth++;
    if (ch === '}' && --depth < 0) return false;
  }
  return depth === 0 && rule.length > 0;
}

export const nftTableSchema = z.strictObject({ kind: z.literal('nft-table'), id: z.string(), family: familySchema, name: z.literal(NFT_TABLE) });

export const nftChainSchema = z.strictObject({
  kind: z.literal('nft-chain'),
  id: z.string(),
  family: familySchema,
  chain: z.string().regex(NFT_CHAIN_NAME, 'an nftables chain name lbprov would use'),
  header: z.string().refine((h) => h === '' || NFT_BASE_CHAIN.test(h), 'empty, or a base chain declaration lbprov writes'),
  rules: z.array(z.string().max(16_384).refine(isNftRule, 'one nftables rule (no ";", "$" or backslash outside a quoted string, balanced braces)')).max(100_000),
});

export const nftSetSchema = z.strictObject({
  kind: z.literal('nft-set'),
  id: z.string(),
  family: familySchema,
  set: z.string().regex(NFT_SET_NAME, 'an nftables set name lbprov would use'),
  declaration: z.array(z.string().regex(NFT_SET_LINE, 'a set declaration line lbprov writes')).max(8),
});

export const NFTABLES_SCHEMAS = [nftTableSchema, nftChainSchema, nftSetSchema] as const;
