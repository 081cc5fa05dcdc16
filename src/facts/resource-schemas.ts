/**
 * Every resource kind's strict schema, in one place: lbprov's resources as a gateway reports them
 * and as a saved plan carries them are both checked with these before anything is planned or
 * sent. The routing and firewall layers declare their own kinds' schemas; the core kinds are here.
 */
import { z } from 'zod';
import type { Resource } from '../model/resources.js';
import { isOwnedFile, SERVICE_NAME, SYSCTL_KEY } from '../model/paths.js';
import { idMatchesFields } from '../model/schema-helpers.js';
import { ROUTING_SCHEMAS } from '../routing/schemas.js';
import { FIREWALL_BACKENDS } from '../firewall/index.js';

/** What lbprov writes into one file at most (an inventory or playbook is refused above 4 MiB too). */
const MAX_FILE_CHARS = 4 * 1024 * 1024;

const coreSchemas = [
  z.strictObject({
    kind: z.literal('sysctl'),
    id: z.string(),
    key: z.string().regex(SYSCTL_KEY, 'a sysctl key'),
    // Values as the kernel prints them: words, numbers, tab-separated lists.
    value: z.string().max(256).regex(/^[^\u0000-\u0008\u000a-\u001f\u007f]*$/, 'no control characters'),
  }),
  z.strictObject({
    kind: z.literal('file'),
    id: z.string(),
    path: z.string().refine(isOwnedFile, 'a path lbprov owns (/etc/lbprov/..., /var/lib/lbprov/..., .../lbprov.conf)'),
    mode: z.string().regex(/^0[0-7]{3}$/, 'an octal mode like "0644"'),
    content: z.string().max(MAX_FILE_CHARS),
  }),
  z.strictObject({ kind: z.literal('module'), id: z.string(), module: z.string().regex(/^[a-z0-9_]{1,64}$/, 'a kernel module name') }),
  z.strictObject({ kind: z.literal('service'), id: z.string(), name: z.string().regex(SERVICE_NAME), revision: z.string().regex(/^[0-9a-f]{0,64}$/) }),
];

const schemas: z.ZodType<Resource>[] = [...coreSchemas, ...ROUTING_SCHEMAS, ...FIREWALL_BACKENDS.flatMap((b) => b.resourceSchemas)];
const kindSchema = z.object({ kind: z.enum(schemas.map((s) => (s as unknown as { shape: { kind: { value: string } } }).shape?.kind?.value).filter(Boolean) as [string, ...string[]]) });

export class ResourceCheckError extends Error {
  override name = 'ResourceCheckError';
}

/** One resource from untrusted data, or ResourceCheckError naming what is wrong with it. */
export function checkResource(value: unknown): Resource {
  for (const schema of schemas) {
    const parsed = schema.safeParse(value);
    if (parsed.success) {
      if (!idMatchesFields(parsed.data)) throw new ResourceCheckError(`resource id ${JSON.stringify(parsed.data.id)} does not name its ${parsed.data.kind}`);
      return parsed.data;
    }
  }
  const kind = kindSchema.safeParse(value);
  if (!kind.success) throw new ResourceCheckError(`unknown resource kind ${JSON.stringify((value as { kind?: unknown } | null)?.kind ?? null)}`);
  // The kind is known: say what is wrong with it according to its own schema.
  const own = schemas.map((s) => s.safeParse(value)).find((r) => !r.success && !r.error.issues.some((i) => i.path[0] === 'kind'));
  const issue = own && !own.success ? own.error.issues[0] : undefined;
  throw new ResourceCheckError(`${kind.data.kind} ${JSON.stringify((value as { id?: unknown }).id ?? null)}: ${issue ? `${issue.path.join('.') || '(resource)'}: ${issue.message}` : 'does not match its schema'}`);
}

export function checkResources(values: readonly unknown[]): Resource[] {
  return values.map(checkResource);
}
