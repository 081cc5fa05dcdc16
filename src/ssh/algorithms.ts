/**
 * Transport algorithms lbprov offers, most preferred first. Chosen for security first and speed
 * second: only AEAD or encrypt-then-MAC constructions, only curve25519/NIST ECDH key exchange,
 * no SHA-1, no CBC, no DSA. Every entry is also in OpenSSH's default client lists, so any sshd of
 * the last decade negotiates with them.
 */

/** curve25519 is constant-time and fast; nistp256 only for servers built without it. */
export const KEX_ALGORITHMS = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group14-sha256',
] as const;

/** AES-GCM rides AES-NI on every x86-64 gateway; chacha20 wins on CPUs without it. */
export const CIPHER_ALGORITHMS = [
  'aes128-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-ctr',
  'aes256-ctr',
] as const;

/** Only consulted for the CTR ciphers: GCM and chacha20 authenticate on their own. */
export const MAC_ALGORITHMS = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
] as const;

/**
 * Host key algorithms when known_hosts says nothing about the host. For a known host the types
 * recorded in known_hosts are moved to the front (see hostKeyAlgorithmsFor).
 */
export const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
] as const;

export type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number];

/** Signature algorithms that prove possession of a host key of the type named in known_hosts. */
const ALGORITHMS_FOR_KEY_TYPE: Record<string, readonly HostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256'],
};

/** HOST_KEY_ALGORITHMS reordered so the key types already known for the host are negotiated. */
export function hostKeyAlgorithmsFor(knownKeyTypes: Iterable<string>): HostKeyAlgorithm[] {
  const preferred: HostKeyAlgorithm[] = [];
  for (const type of knownKeyTypes) {
    for (const algorithm of ALGORITHMS_FOR_KEY_TYPE[type] ?? []) {
      if (!preferred.includes(algorithm)) preferred.push(algorithm);
    }
  }
  return [...preferred, ...HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))];
}
