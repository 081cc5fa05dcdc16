/**
 * Pieces of the strict resource schemas (every layer declares its kinds' schemas with these):
 * resources from a gateway and from a saved plan are both untrusted and are read with the same
 * schemas, so a rule with a shell word break, an unknown kind or a path outside what lbprov owns
 * never reaches a command.
 */
import { z } from 'zod';
import { IP_FAMILIES, expectedId, type Resource } from './resources.js';

export const familySchema = z.enum(IP_FAMILIES);

/** A kind's schema: a strict object with its `kind` literal, so every kind joins one discriminated union. */
export type ResourceSchema = z.ZodType<Resource> & z.core.$ZodTypeDiscriminable;

/** Characters that could end or chain a shell word, outside a double-quoted string. */
const SHELL_META = /[;&|$`<>(){}\\\n\r]/;

/** Rule text whose unquoted parts cannot be read as more than one command by any shell. */
export function noShellMeta(text: string): boolean {
  return !SHELL_META.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
}

/** A line of canonical text: `canonical(text)` gives it back unchanged, and no shell metacharacter. */
export function canonicalText(what: string, canonical: (text: string) => string) {
  return z
    .string()
    .max(4096)
    .superRefine((text, ctx) => {
      if (!noShellMeta(text)) {
        ctx.addIssue({ code: 'custom', message: `${what} contains a shell metacharacter outside a quoted string: ${JSON.stringify(text.slice(0, 120))}` });
        return;
      }
      try {
        const again = canonical(text);
        if (again !== text) ctx.addIssue({ code: 'custom', message: `${what} is not in canonical form (${JSON.stringify(text.slice(0, 120))} reads as ${JSON.stringify(again.slice(0, 120))})` });
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `${what} does not parse: ${(e as Error).message}` });
      }
    });
}

/** The id a resource's fields give it, or that id with a duplicate's `#N`. */
export function idMatchesFields(r: Resource): boolean {
  const expected = expectedId(r);
  return r.id === expected || new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}#\\d{1,4}$`).test(r.id);
}
