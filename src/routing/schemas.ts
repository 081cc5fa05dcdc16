/** Strict schemas of the routing kinds (see model/schema-helpers.ts). */
import { z } from 'zod';
import { canonicalText, familySchema } from '../model/schema-helpers.js';
import { canonicalRouteFromText } from './routes.js';
import { canonicalIpRuleFromText } from './rules.js';

export const ipRuleSchema = z.strictObject({
  kind: z.literal('ip-rule'),
  id: z.string(),
  family: familySchema,
  priority: z.number().int().min(1).max(32765),
  selector: canonicalText('ip rule selector', (s) => canonicalIpRuleFromText(`priority 1 ${s}`).selector),
});

export const routeTableSchema = z.strictObject({
  kind: z.literal('route-table'),
  id: z.string(),
  family: familySchema,
  table: z.number().int().min(1).max(2 ** 31 - 1),
  routes: z.array(canonicalText('route', (r) => canonicalRouteFromText(`${r} table 1`).route)).max(10_000),
});

export const ROUTING_SCHEMAS = [ipRuleSchema, routeTableSchema] as const;
