/** One run reads its known_hosts files and identities once, and sees what accept-new wrote. */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionCache } from '../../src/ssh/session.js';
import { makeHostKey, makeUserKey, tempDir } from './harness.js';

const dir = tempDir();
afterAll(() => dir.remove());

describe('SessionCache', () => {
  it('reads a known_hosts file once, and again after forgetKnownHosts', async () => {
    const file = join(dir.path, 'known_hosts');
    const first = makeHostKey();
    writeFileSync(file, `192.0.2.1 ${first.publicLine}\n`);
    const cache = new SessionCache();
    const a = await cache.knownHostsOf(file);
    appendFileSync(file, `192.0.2.3 ${makeHostKey().publicLine}\n`);
    expect(await cache.knownHostsOf(file)).toBe(a);
    expect(a.entries).toHaveLength(1);
    cache.forgetKnownHosts(file);
    expect((await cache.knownHostsOf(file)).entries).toHaveLength(2);
  });

  it('decrypts an identity once per run, however many connections ask at once', async () => {
    const passphrase = 'cached passphrase';
    const key = makeUserKey(dir.path, 'id_cached', 'ed25519', passphrase);
    let asked = 0;
    const sources = { env: {}, prompt: async () => (asked++, passphrase) };
    const cache = new SessionCache();
    const [a, b] = await Promise.all([cache.credentialsOf(key.file, sources), cache.credentialsOf(key.file, sources)]);
    expect(a.identity?.key).toBeDefined();
    expect(b).toBe(a);
    expect(await cache.credentialsOf(key.file, sources)).toBe(a);
    expect(asked).toBe(1);
    expect(await new SessionCache().credentialsOf(key.file, { env: { LBPROV_SSH_PASSPHRASE: passphrase } })).not.toBe(a);
  });
});
