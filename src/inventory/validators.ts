/**
 * Strict validators for every inventory string that can reach a shell command, an iptables
 * rule, an `ip` command or an SSH option. They are stricter than Linux or OpenSSH on purpose:
 * each accepted string is safe to place unquoted in a command line and cannot be read as an
 * option (no leading '-'). Facts parsing reuses them on what a (possibly hostile) gateway reports.
 */

/**
 * Linux accepts 1-15 bytes without '/', ':', whitespace or control characters, except "." and
 * "..". We accept only [A-Za-z0-9_.@-], 1-15 characters, not starting with '-' or '.', which
 * also keeps out iptables' '+' wildcard and '!' negation.
 */
export function isInterfaceName(s: string): boolean {
  return /^[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,14}$/.test(s);
}

/** Dotted quad; octets 0-255 without leading zeros (which `inet_aton` reads as octal). */
export function isIPv4(s: string): boolean {
  return /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(s);
}

/**
 * A usable unicast destination: not 0.0.0.0/8, loopback, multicast, reserved (240/4) or
 * broadcast. Next hops and probes must be one.
 */
export function isUnicastIPv4(s: string): boolean {
  if (!isIPv4(s)) return false;
  const first = Number(s.slice(0, s.indexOf('.')));
  return first !== 0 && first !== 127 && first < 224;
}

/**
 * DNS name of RFC 1123 labels (letters, digits, inner hyphens, 1-63 each, 253 in all), no
 * trailing dot. The last label may not be all digits, so "10.0.0.256" or "010.1.2.3" are not
 * taken for names.
 */
export function isHostName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const labels = s.split('.');
  return (
    labels.every((label) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label)) &&
    !/^\d+$/.test(labels[labels.length - 1] ?? '')
  );
}

/** Where SSH may connect: an IPv4 address or a host name. */
export function isSshHost(s: string): boolean {
  return isIPv4(s) || isHostName(s);
}

/** Link names end up in chain names and rt_tables names: [a-z0-9_-], 1-15, no leading '-'. */
export function isLinkName(s: string): boolean {
  return /^[a-z0-9_][a-z0-9_-]{0,14}$/.test(s);
}

/** Gateway and group names (also used in --limit patterns, so no ',', ':', '!', '&', '*'). */
export function isGatewayName(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(s);
}

/** Remote login name: POSIX portable user name characters, 1-32, no leading '-' or '.'. */
export function isSshUser(s: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(s);
}

/**
 * A local file path, absolute or under "~/", of safe characters only: no whitespace, quotes,
 * shell metacharacters or control characters (a path with a space can be reached through a
 * symlink). ".." components are allowed: the path is the admin's own machine.
 */
export function isLocalFilePath(s: string): boolean {
  return s.length <= 4096 && /^(?:\/|~\/)[A-Za-z0-9_.@%+=,\/-]*$/.test(s) && !s.endsWith('/');
}

/** OpenSSH ProxyJump: comma-separated hops of [user@]host[:port]. */
export function isProxyJump(s: string): boolean {
  return s.split(',').every((hop) => {
    const match = /^(?:([^@]*)@)?([^:@]*)(?::(\d{1,5}))?$/.exec(hop);
    if (!match) return false;
    const [, user, host = '', port] = match;
    return (
      (user === undefined || isSshUser(user)) &&
      isSshHost(host) &&
      (port === undefined || isPort(Number(port)))
    );
  });
}

export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** A value quoted for an error message: escaped, and cut short, since it may be hostile or huge. */
export function preview(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : describeValue(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** "a.b.c.d" or "a.b.c.d/len" with no bit set past the prefix length (a typo, or a host meant as a net). */
export function isIPv4Prefix(s: string): boolean {
  const [address, length, extra] = s.split('/');
  if (extra !== undefined || address === undefined || !isIPv4(address)) return false;
  if (length === undefined) return true;
  if (!/^(0|[1-9]\d?)$/.test(length) || Number(length) > 32) return false;
  const value = address.split('.').reduce((v, octet) => v * 256 + Number(octet), 0);
  const hostBits = 2 ** (32 - Number(length));
  return value % hostBits === 0;
}

/** A port 1-65535 (number, or digits) or a range "from-to" with from <= to. */
export function isPortSpec(p: unknown): boolean {
  const text = typeof p === 'number' ? String(p) : typeof p === 'string' ? p : '';
  const m = /^([1-9]\d{0,4})(?:-([1-9]\d{0,4}))?$/.exec(text);
  if (!m) return false;
  const from = Number(m[1]);
  const to = Number(m[2] ?? m[1]);
  return from <= 65535 && to <= 65535 && from <= to;
}

/** A hook's path as the inventory writes it: absolute, or relative to the inventory file. */
export function isHookPath(s: string): boolean {
  return /^[A-Za-z0-9_.@%+=,/-]{1,255}$/.test(s) && !s.startsWith('-') && s.split('/').every((p) => p !== '..');
}

export function isAbsolutePlainPath(s: string): boolean {
  return /^\/[A-Za-z0-9_.@%+=,/-]{0,254}$/.test(s) && s.split('/').slice(1).every((p) => p !== '' && p !== '.' && p !== '..');
}
