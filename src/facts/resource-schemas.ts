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

const sysctlSchema = z.strictObject({
  kind: z.literal('sysctl'),
  id: z.string(),
  key: z.string().regex(SYSCTL_KEY, 'a sysctl key'),
  // Values as the kernel prints them: words, numbers, tab-separated lists.
  value: z.string().max(256).regex(/^[^\u0000-\u0008\u000a-\u001f\u007f]*$/, 'no control characters'),
});
const fileSchema = z.strictObject({
  kind: z.literal('file'),
  id: z.string(),
  path: z.string().refine(isOwnedFile, 'a path lbprov owns (/etc/lbprov/..., /var/lib/lbprov/..., .../lbprov.conf)'),
  mode: z.string().regex(/^0[0-7]{3}$/, 'an octal mode like "0644"'),
  content: z.string().max(MAX_FILE_CHARS),
});
const moduleSchema = z.strictObject({ kind: z.literal('module'), id: z.string(), module: z.string().regex(/^[a-z0-9_]{1,64}$/, 'a kernel module name') });
const serviceSchema = z.strictObject({ kind: z.literal('service'), id: z.string(), name: z.string().regex(SERVICE_NAME), revision: z.string().regex(/^[0-9a-f]{0,64}$/) });

const resourceSchema = z.discriminatedUnion('kind', [sysctlSchema, fileSchema, moduleSchema, serviceSchema, ...ROUTING_SCHEMAS, ...FIREWALL_BACKENDS.flatMap((b) => b.resourceSchemas)]);

export class ResourceCheckError extends Error {
  override name = 'ResourceCheckError';
}

/** One resource from untrusted data, or ResourceCheckError naming what is wrong with it. */
export function checkResource(value: unknown): Resource {
  const parsed = resourceSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const named = typeof value === 'object' && value !== null && 'kind' in value && 'id' in value ? `${String(value.kind)} ${JSON.stringify(value.id)}: ` : '';
    if (issue?.code === 'invalid_union') {
      throw new ResourceCheckError(`unknown resource kind ${JSON.stringify(typeof value === 'object' && value !== null && 'kind' in value ? value.kind : null)}`);
    }
    throw new ResourceCheckError(`${named}${issue ? `${issue.path.join('.') || '(resource)'}: ${issue.message}` : 'does not match its schema'}`);
  }
  if (!idMatchesFields(parsed.data)) throw new ResourceCheckError(`resource id ${JSON.stringify(parsed.data.id)} does not name its ${parsed.data.kind}`);
  return parsed.data;
}

export function checkResources(values: readonly unknown[]): Resource[] {
  return values.map(checkResource);
}
