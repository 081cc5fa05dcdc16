/**
 * OpenSSH known_hosts: parsing and host key verification. See sshd(8) "SSH_KNOWN_HOSTS FILE
 * FORMAT". lbprov never accepts an unverified key: unknown hosts are refused unless the caller
 * asked for accept-new, and a changed or revoked key is always refused.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KnownHostsEntry {
  file: string;
  line: number;
  marker?: 'revoked';
  /** Comma-separated patterns (with `!` negation and `*`/`?` wildcards) or one hashed name. */
  hosts: { kind: 'patterns'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
}

export interface KnownHosts {
  file: string;
  entries: KnownHostsEntry[];
  /** Lines skipped as malformed or unsupported, "file:line: why". */
  warnings: string[];
}

/** The name OpenSSH looks up: `host`, or `[host]:port` when the port is not 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Key type recorded inside an SSH public key blob (a length-prefixed string). */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined;
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** OpenSSH's fingerprint form: `SHA256:` + unpadded base64 of the blob's SHA-256. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function parseKnownHosts(text: string, file: string): KnownHosts {
  const entries: KnownHostsEntry[] = [];
  const warnings: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const fields = raw.trim().split(/[ \t]+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) return;
    let marker: KnownHostsEntry['marker'];
    if (fields[0].startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else {
        warnings.push(`${file}:${line}: ${name} entries are not supported; line ignored`);
        return;
      }
    }
    const [hostField, keyType, keyBase64] = fields;
    if (hostField === undefined || keyType === undefined || keyBase64 === undefined) {
      warnings.push(`${file}:${line}: expected "hosts keytype key"; line ignored`);
      return;
    }
    const key = Buffer.from(keyBase64, 'base64');
    if (keyTypeOf(key) !== keyType) {
      warnings.push(`${file}:${line}: key is not a valid ${keyType} key; line ignored`);
      return;
    }
    const hosts = parseHostField(hostField);
    if (hosts === undefined) {
      warnings.push(`${file}:${line}: malformed hashed host name; line ignored`);
      return;
    }
    entries.push({ file, line, ...(marker ? { marker } : {}), hosts, keyType, key });
  });
  return { file, entries, warnings };
}

function parseHostField(field: string): KnownHostsEntry['hosts'] | undefined {
  if (!field.startsWith('|')) {
    return { kind: 'patterns', patterns: field.toLowerCase().split(',').filter((p) => p !== '') };
  }
  const match = /^\|1\|([A-Za-z0-9+/=]+)\|([A-Za-z0-9+/=]+)$/.exec(field);
  if (!match?.[1] || !match[2]) return undefined;
  const salt = Buffer.from(match[1], 'base64');
  const hash = Buffer.from(match[2], 'base64');
  return salt.length === 20 && hash.length === 20 ? { kind: 'hashed', salt, hash } : undefined;
}

/** OpenSSH glob: `*` any run of characters, `?` exactly one; the whole name must match. */
function globMatches(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${source}$`, 's').test(name);
}

function entryMatchesHost(entry: KnownHostsEntry, name: string): boolean {
  const lower = name.toLowerCase();
  if (entry.hosts.kind === 'hashed') {
    const digest = createHmac('sha1', entry.hosts.salt).update(lower).digest();
    return timingSafeEqual(digest, entry.hosts.hash);
  }
  let positive = false;
  for (const pattern of entry.hosts.patterns) {
    if (pattern.startsWith('!')) {
      // A matching negation vetoes the whole line, whatever else matches.
      if (globMatches(pattern.slice(1), lower)) return false;
    } else if (globMatches(pattern, lower)) {
      positive = true;
    }
  }
  return positive;
}

export type HostKeyVerdict =
  | { kind: 'match'; entry: KnownHostsEntry }
  | { kind: 'revoked'; entry: KnownHostsEntry }
  | { kind: 'changed'; entries: KnownHostsEntry[] }
  | { kind: 'unknown' };

/**
 * Strict on purpose: if known_hosts has any key for this name and none equals the offered one,
 * the key has changed, even when the recorded keys are of another type.
 */
export function verifyHostKey(knownHosts: KnownHosts, name: string, offered: Buffer): HostKeyVerdict {
  const forHost = knownHosts.entries.filter((entry) => entryMatchesHost(entry, name));
  const revoked = forHost.find((entry) => entry.marker === 'revoked' && entry.key.equals(offered));
  if (revoked) return { kind: 'revoked', entry: revoked };
  const trusted = forHost.filter((entry) => entry.marker === undefined);
  const match = trusted.find((entry) => entry.key.equals(offered));
  if (match) return { kind: 'match', entry: match };
  return trusted.length > 0 ? { kind: 'changed', entries: trusted } : { kind: 'unknown' };
}

/** Key types recorded for `name`, in file order, to negotiate one of them. */
export function knownKeyTypes(knownHosts: KnownHosts, name: string): string[] {
  const types = knownHosts.entries
    .filter((entry) => entry.marker === undefined && entryMatchesHost(entry, name))
    .map((entry) => entry.keyType);
  return [...new Set(types)];
}

/** Reads a known_hosts file; a missing file is an empty one (every host is then unknown). */
export async function loadKnownHosts(file: string): Promise<KnownHosts> {
  try {
    return parseKnownHosts(await readFile(file, 'utf8'), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { file, entries: [], warnings: [] };
    throw error;
  }
}

/** accept-new: record the key as OpenSSH does (plain name, one line, appended). */
export async function appendKnownHost(file: string, name: string, key: Buffer): Promise<void> {
  const keyType = keyTypeOf(key);
  if (keyType === undefined) throw new Error('cannot record a malformed host key');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const existing = await readFile(file);
    // A last line without newline would otherwise be glued to ours.
    if (existing.length > 0 && existing[existing.length - 1] !== 0x0a) prefix = '\n';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await appendFile(file, `${prefix}${name} ${keyType} ${key.toString('base64')}\n`, { mode: 0o600 });
}
