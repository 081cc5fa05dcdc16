/**
 * What every connection of a run shares: known_hosts files and identities are read (and an
 * encrypted key decrypted, or its passphrase asked for) once per run, not once per gateway, and
 * handshakes are paced run-wide.
 */
import { loadCredentials, type Credentials, type CredentialSources } from './auth.js';
import { HandshakePacer } from './handshake-pacer.js';
import { loadKnownHosts, type KnownHosts } from './known-hosts.js';

export class SessionCache {
  readonly handshakes = new HandshakePacer();
  private readonly knownHosts = new Map<string, Promise<KnownHosts>>();
  private readonly credentials = new Map<string, Promise<Credentials>>();

  knownHostsOf(file: string): Promise<KnownHosts> {
    let loaded = this.knownHosts.get(file);
    if (!loaded) {
      loaded = loadKnownHosts(file);
      this.knownHosts.set(file, loaded);
      // A failed read is not remembered: the next connection tries again.
      loaded.catch(() => this.knownHosts.delete(file));
    }
    return loaded;
  }

  /** After accept-new wrote to it: the next connection must see the new line. */
  forgetKnownHosts(file: string): void {
    this.knownHosts.delete(file);
  }

  credentialsOf(identityFile: string | undefined, sources: CredentialSources): Promise<Credentials> {
    const key = identityFile ?? '';
    let loaded = this.credentials.get(key);
    if (!loaded) {
      loaded = loadCredentials(identityFile, sources);
      this.credentials.set(key, loaded);
    }
    return loaded;
  }
}
