/*
 * Inventory reference (paste-ready for the README)
 * ================================================
 *
 * `-i NAME` reads `inventories/NAME.yml` under the working directory; `-i PATH` (anything with a
 * '/' or ending in .yml/.yaml) reads that file. YAML 1.2: booleans are `true`/`false` only
 * (`yes` is a string), duplicate keys are errors, unknown keys are errors.
 *
 * ```yaml
 * ssh:                        # optional; defaults for every gateway, each key overridable per gateway
 *   user: root                # default root
 *   port: 22                  # default 22 (1-65535)
 *   identity_file: ~/.ssh/id_ed25519   # default: none, keys come from ssh-agent; null clears it
 *   known_hosts: ~/.ssh/known_hosts    # default ~/.ssh/known_hosts
 *   become: false             # true: privileged commands run through `sudo -n`
 *   proxy_jump: admin@bastion.example.net:22   # OpenSSH ProxyJump form, comma list; null clears it
 *   connect_timeout: 10       # seconds (default 10; 0.1-3600, fractions allowed)
 *   command_timeout: 60       # seconds per remote command (default 60; 0.1-3600)
 *   keepalive_interval: 15    # whole seconds between SSH keepalives (default 15; 0 turns them off)
 *   connection_attempts: 3    # tries of a connection that fails transiently (EHOSTUNREACH, ECONNRESET,
 *                             # refused, dropped before login), with backoff (default 3; 1-10)
 * defaults:                   # optional; per-gateway keys below override these
 *   mark_mask: 0xf0000000     # default 0xf0000000; integer or "0x..." string; contiguous bits
 *   table_base: 100           # default 100; link i (0-based) uses routing table table_base+1+i
 *   priority_base: 100        # default 100; lbprov owns ip rule priorities [base, base+99]
 *   failover: auto            # auto | condition | chain-swap (default auto; condition: not with rules or sticky)
 *   sticky: { timeout: 600 }  # optional: a LAN source keeps the link of its first balanced connection
 *                             # while it opens new ones at least every timeout s (10-86400)
 *   firewall: auto            # auto | iptables | nftables (default auto: the backend lbprov already
 *                             # uses on the gateway; on a new one nftables when nft works, else iptables)
 *   monitor: { interval: 2, timeout: 1, reliability: 1, down: 3, up: 3 }
 *                             # interval: 0.2-3600 s (two decimals); timeout: 0.1 s to the interval
 *                             # (default 1 s, or the interval when shorter); also, all optional:
 *                             # latency_ms: { down: 500, up: 250 }  average RTT over the window
 *                             # loss_pct: { down: 20, up: 5 }       lost probes over the window
 *                             # window: 10                          rounds (1-100)
 *                             # flap: { changes: 8, minutes: 10, hold: 300 }  (default; null: off)
 *   hooks: [./hooks/notify.sh] # local executables (relative to the inventory file, or absolute)
 *                             # copied to the gateway, run on every link state change
 *   hook_timeout: 10          # seconds before a hook is killed (1-600)
 *   metrics_dir: /var/lib/prometheus/node-exporter   # Prometheus text file (written only
 *                             # where the folder exists); null: none
 * gateways:                   # one or more
 *   gw-a1:                    # name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}
 *     host: 192.0.2.1         # where SSH connects: IPv4 or DNS name (required)
 *     ssh: { port: 2222 }     # optional; any key of the top-level `ssh`
 *     mark_mask: 0xf000       # optional; likewise table_base, priority_base, failover
 *     lan:
 *       interfaces: [eth0]    # 1-8 LAN-side interfaces whose new connections are balanced
 *     links:                  # 2-8 links
 *       - name: isp1          # [a-z0-9_-], 1-15, not starting with '-', unique per gateway
 *         interface: eth1     # unique across the gateway's links and LAN interfaces
 *         gateway: 198.51.100.1   # next hop: a unicast IPv4, or
 *                             #   dhcp: learned on the gateway from its DHCP client (the lease, else the
 *                             #         default route the client installed for this interface), and
 *                             #         re-learned by the monitor whenever it changes
 *                             #   none: a point-to-point link (PPPoE, some LTE): `default dev <interface>`
 *         weight: 3           # integer 1-100
 *         tier: 1             # 1-5 (default 1): only the live links of the lowest tier with any are balanced
 *         probes: [198.51.100.1]  # 1-8 unicast IPv4 health-check targets; default: the next hop (for
 *                             # dhcp, the learned router); required when gateway is none
 *         monitor:            # optional; each key defaults to defaults.monitor, then:
 *           interval: 2       # seconds between probe rounds (integer 1-3600)
 *           timeout: 1        # seconds to wait for a probe answer (integer 1-interval)
 *           reliability: 1    # probes that must answer for a round to succeed (1-number of probes)
 *           down: 3           # failed rounds before the link is declared down (1-100)
 *           up: 3             # good rounds before it is declared up again (1-100)
 *     rules:                  # optional, at most 100; first match wins, before balancing
 *       - name: voip          # like a link name, unique per gateway
 *         proto: udp          # tcp | udp | icmp
 *         dport: [5060, "10000-20000"]   # ports or "from-to" ranges (need proto tcp or udp); also sport
 *         src: [192.0.2.128/25]          # IPv4 prefixes without host bits; also dst
 *         lan: [eth0]         # LAN interfaces it applies to (default all)
 *         via: [dsl]          # links (balanced by weight, tiers and failover within them), or main
 *         fallback: balance   # none of the via links live: balance (the pool) | drop (default balance)
 * groups:                     # optional; name -> gateway names (same name rules as gateways;
 *   paris: [gw-a1]            # may not reuse a gateway name, and "all" is reserved)
 * ```
 *
 * Rules beyond the per-value ones:
 * - Interface names: 1-15 of [A-Za-z0-9_.@-], not starting with '-' or '.' (stricter than Linux,
 *   which also allows most punctuation; nothing here can be read as a shell word break, an option,
 *   or iptables' '+' wildcard).
 * - IPv4 addresses are dotted quads without leading zeros ("010.0.0.1" is refused: inet_aton reads
 *   it as octal).
 * - File paths are absolute or start with "~/" (expanded to the local home directory), and use
 *   only [A-Za-z0-9_.@%+=,/-]: no spaces, quotes or control characters (use a symlink).
 * - At most 8 links: the chain-swap failover mode pre-renders one balancing chain per non-empty
 *   set of live links, 2^n - 1 of them (255 for 8).
 * - The weights, divided by their greatest common divisor, may add up to at most 256: that sum is
 *   the length of the `statistic --mode nth` pool, one rule per slot.
 * - mark_mask must be one run of contiguous bits with room for a distinct non-zero value per link
 *   (link i gets mark (i + 1) << lowest bit of the mask). Keep it clear of the bits other software
 *   uses (Tailscale 0xff0000, mwan3 0x3f00, kube-proxy 0xc000 by default).
 * - Routing tables table_base+1 .. table_base+n must each lie in 1-252 or 256-2147483647
 *   (253-255 are the kernel's default, main and local tables).
 * - Rule priorities [priority_base, priority_base+99] must lie in 1-32765 (0, 32766 and 32767
 *   are the kernel's local, main and default rules).
 * - Two gateways may not share the same SSH user, host and port (a copy-paste slip would
 *   provision one machine twice with different settings).
 * - A link's address always comes from the gateway; a link whose interface is missing or has no
 *   address yet (PPPoE session down, lease not bound) is a warning: it joins when it comes up.
 * - The same next hop on two different link interfaces is allowed (two modems that both use
 *   192.168.1.1): each link's routes name their device.
 * - Files over 4 MiB, bytes that are not UTF-8, YAML syntax errors, unknown tags, alias
 *   expansion beyond 100 nodes (alias "bombs") and nesting too deep to parse are refused before
 *   anything else is checked.
 *
 * Errors name the file, line and key ("inventories/site-a.yml:14: gateways.gw-a1.links[1].weight:
 * must be an integer from 1 to 100 (got 2.5)"); every problem found is listed, one per line.
 */

import { z } from 'zod';
import { FIREWALL_BACKENDS } from '../model/inventory.js';
import {
  isGatewayName,
  isInterfaceName,
  isLinkName,
  isLocalFilePath,
  isPort,
  isProxyJump,
  isSshHost,
  isSshUser,
  isAbsolutePlainPath,
  isHookPath,
  isIPv4Prefix,
  isPortSpec,
  isUnicastIPv4,
} from './validators.js';

export const MAX_LINKS = 8;
export const MAX_POOL_SLOTS = 256;
export const MAX_PROBES = 8;
export const MAX_LAN_INTERFACES = 8;

export const SSH_DEFAULTS = {
  user: 'root',
  port: 22,
  knownHosts: '~/.ssh/known_hosts',
  become: false,
  connectTimeoutS: 10,
  commandTimeoutS: 60,
  keepaliveIntervalS: 15,
  connectionAttempts: 3,
} as const;

export const GATEWAY_DEFAULTS = {
  markMask: 0xf0000000,
  tableBase: 100,
  priorityBase: 100,
  failover: 'auto',
  firewall: 'auto',
} as const;

export const MONITOR_DEFAULTS = { interval: 2, timeout: 1, reliability: 1, down: 3, up: 3, window: 10 } as const;
/** More than 8 changes in 10 minutes hold a link down for 5 minutes. */
export const FLAP_DEFAULTS = { changes: 8, minutes: 10, hold: 300 } as const;
export const HOOK_TIMEOUT_DEFAULT = 10;
/** Debian's prometheus-node-exporter reads *.prom files here (its textfile collector). */
export const METRICS_DIR_DEFAULT = '/var/lib/prometheus/node-exporter';

/** A string accepted only when `check` passes; one message for wrong type and wrong content. */
function checkedString(check: (s: string) => boolean, rule: string) {
  return z.string({ error: rule }).refine(check, { error: rule });
}

function integer(min: number, max: number) {
  const rule = `must be an integer from ${min} to ${max}`;
  return z.number({ error: rule }).refine((n) => Number.isInteger(n) && n >= min && n <= max, { error: rule });
}

/** Fractions allowed, but not below 0.1 s: a value that rounds to 0 ms would mean "no timeout". */
const timeoutSeconds = z
  .number({ error: 'must be a number of seconds from 0.1 to 3600' })
  .refine((n) => n >= 0.1 && n <= 3600, { error: 'must be a number of seconds from 0.1 to 3600' });

const filePath = checkedString(
  isLocalFilePath,
  'must be an absolute path or start with "~/", using only [A-Za-z0-9_.@%+=,/-]',
);

const MARK_MASK_RULE =
  'must be a non-zero mask of contiguous bits within 0xffffffff, as an integer or a "0x..." string';

/** Integer, or hex string: YAML reads an unquoted 0xf0000000 as an integer already. */
export function parseMarkMask(value: number | string): number | undefined {
  const n = typeof value === 'number' ? value : /^0x[0-9a-fA-F]{1,8}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) return undefined;
  let shifted = n;
  while (shifted % 2 === 0) shifted /= 2;
  return Number.isInteger(Math.log2(shifted + 1)) ? n : undefined;
}

const markMask = z.union([z.number(), z.string()], { error: MARK_MASK_RULE }).transform((value, ctx) => {
  const mask = parseMarkMask(value);
  if (mask === undefined) {
    ctx.addIssue({ code: 'custom', message: MARK_MASK_RULE, input: value });
    return z.NEVER;
  }
  return mask;
});

const sshSchema = z.strictObject({
  user: checkedString(isSshUser, 'must be 1-32 of [A-Za-z0-9_.-], not starting with "-" or "."'),
  port: z.number({ error: 'must be an integer from 1 to 65535' }).refine(isPort, {
    error: 'must be an integer from 1 to 65535',
  }),
  identity_file: filePath.nullable(),
  known_hosts: filePath,
  become: z.boolean({ error: 'must be true or false' }),
  proxy_jump: checkedString(
    isProxyJump,
    'must be [user@]host[:port], or several separated by commas, with a valid user, host and port',
  ).nullable(),
  connect_timeout: timeoutSeconds,
  command_timeout: timeoutSeconds,
  keepalive_interval: integer(0, 3600),
  connection_attempts: integer(1, 10),
}).partial();

/** Seconds with at most two decimals (the monitor counts hundredths of a second). */
function seconds(min: number, max: number) {
  const rule = `must be a number of seconds from ${min} to ${max}, with at most two decimals`;
  return z.number({ error: rule }).refine((n) => n >= min && n <= max && Math.abs(n * 100 - Math.round(n * 100)) < 1e-6, { error: rule });
}

function thresholds(min: number, max: number, unit: string) {
  return z.strictObject({ down: integer(min, max), up: integer(min, max) }, { error: `must be { down: ${unit}, up: ${unit} }` });
}

const monitorSchema = z
  .strictObject({
    interval: seconds(0.2, 3600),
    timeout: seconds(0.1, 3600),
    reliability: integer(1, MAX_PROBES),
    down: integer(1, 100),
    up: integer(1, 100),
    latency_ms: thresholds(1, 60_000, 'ms').nullable(),
    loss_pct: thresholds(0, 100, 'percent').nullable(),
    window: integer(1, 100),
    flap: z.strictObject({ changes: integer(1, 100), minutes: integer(1, 1440), hold: integer(1, 86_400) }).nullable(),
  })
  .partial();

const failover = z.enum(['auto', 'condition', 'chain-swap'], { error: 'must be one of auto, condition, chain-swap' });

const FIREWALL_SETTINGS = ['auto', ...FIREWALL_BACKENDS] as const;
const firewall = z.enum(FIREWALL_SETTINGS, { error: `must be one of ${FIREWALL_SETTINGS.join(', ')}` });

export const MAX_RULES = 100;
export const MAX_RULE_LIST = 64;

const sticky = z.strictObject({ timeout: integer(10, 86_400) });

/** Gateway settings that `defaults:` can also set. */
const gatewayTuning = {
  mark_mask: markMask.optional(),
  table_base: integer(0, 2 ** 31 - 2).optional(),
  priority_base: integer(1, 32765 - 99).optional(),
  failover: failover.optional(),
  firewall: firewall.optional(),
  sticky: sticky.optional(),
  hooks: z
    .array(checkedString(isHookPath, 'must be a path to a local executable: relative to the inventory or absolute, of [A-Za-z0-9_.@%+=,/-]'), { error: 'must be a list of paths' })
    .max(16, { error: 'allows at most 16 hooks' })
    .optional(),
  hook_timeout: integer(1, 600).optional(),
  metrics_dir: checkedString(isAbsolutePlainPath, 'must be an absolute path of [A-Za-z0-9_.@%+=,/-]').nullable().optional(),
};

const ipv4Unicast = checkedString(
  isUnicastIPv4,
  'must be a unicast IPv4 address (dotted quad, no leading zeros; not 0/8, 127/8, multicast or reserved)',
);

const PREFIX_RULE = 'must be an IPv4 address or prefix (a.b.c.d or a.b.c.d/len) without host bits';
const prefix = checkedString(isIPv4Prefix, PREFIX_RULE);
const PORT_RULE = 'must be a port 1-65535 or a range "from-to"';
const port = z.union([z.number(), z.string()], { error: PORT_RULE }).refine(isPortSpec, { error: PORT_RULE });
const list = <T extends z.ZodType>(item: T, what: string) =>
  z
    .array(item, { error: `must be a list of ${what}` })
    .min(1, { error: `must list 1 to ${MAX_RULE_LIST} ${what}` })
    .max(MAX_RULE_LIST, { error: `must list 1 to ${MAX_RULE_LIST} ${what}` });

const ruleSchema = z.strictObject({
  name: checkedString(isLinkName, 'must be 1-15 of [a-z0-9_-], not starting with "-"'),
  src: list(prefix, 'prefixes').optional(),
  dst: list(prefix, 'prefixes').optional(),
  proto: z.enum(['tcp', 'udp', 'icmp'], { error: 'must be one of tcp, udp, icmp' }).optional(),
  sport: list(port, 'ports').optional(),
  dport: list(port, 'ports').optional(),
  lan: list(checkedString(isInterfaceName, 'must be an interface name'), 'interfaces').optional(),
  via: z.union([z.literal('main'), list(checkedString(isLinkName, 'must be a link name'), 'links')], {
    error: 'must be "main" (not balanced: the main table decides) or a list of link names',
  }),
  fallback: z.enum(['balance', 'drop'], { error: 'must be balance (the pool takes over) or drop' }).optional(),
});

const linkSchema = z.strictObject({
  name: checkedString(isLinkName, 'must be 1-15 of [a-z0-9_-], not starting with "-"'),
  interface: checkedString(isInterfaceName, 'must be an interface name: 1-15 of [A-Za-z0-9_.@-], not starting with "-" or "."'),
  gateway: checkedString(
    (s) => s === 'dhcp' || s === 'none' || isUnicastIPv4(s),
    'must be a unicast IPv4 next hop, "dhcp" (learned from the DHCP client on the gateway) or "none" (point-to-point link)',
  ),
  weight: integer(1, 100),
  tier: integer(1, 5).optional(),
  probes: z
    .array(ipv4Unicast, { error: 'must be a list of IPv4 addresses' })
    .min(1, { error: `must list 1 to ${MAX_PROBES} addresses` })
    .max(MAX_PROBES, { error: `must list 1 to ${MAX_PROBES} addresses` })
    .optional(),
  monitor: monitorSchema.optional(),
});

const gatewaySchema = z.strictObject({
  host: checkedString(isSshHost, 'must be an IPv4 address or a DNS host name (RFC 1123 labels)'),
  ssh: sshSchema.optional(),
  lan: z.strictObject({
    interfaces: z
      .array(
        checkedString(isInterfaceName, 'must be an interface name: 1-15 of [A-Za-z0-9_.@-], not starting with "-" or "."'),
        { error: 'must be a list of interface names' },
      )
      .min(1, { error: `must list 1 to ${MAX_LAN_INTERFACES} interfaces` })
      .max(MAX_LAN_INTERFACES, { error: `must list 1 to ${MAX_LAN_INTERFACES} interfaces` }),
  }),
  links: z
    .array(linkSchema, { error: 'must be a list of links' })
    .min(2, { error: 'needs at least 2 links to balance' })
    .max(MAX_LINKS, {
      error: `allows at most ${MAX_LINKS} links (chain-swap failover pre-renders 2^n - 1 chain variants)`,
    }),
  rules: z.array(ruleSchema, { error: 'must be a list of rules' }).max(MAX_RULES, { error: `allows at most ${MAX_RULES} rules` }).optional(),
  ...gatewayTuning,
});

const gatewayName = checkedString(isGatewayName, 'must be 1-63 of [A-Za-z0-9_.-], starting with a letter or digit');

export const inventorySchema = z.strictObject({
  ssh: sshSchema.optional(),
  // Also a gateway's or defaults' key; the top level is where a fleet's hooks usually live.
  hooks: gatewayTuning.hooks,
  hook_timeout: gatewayTuning.hook_timeout,
  defaults: z.strictObject({ ...gatewayTuning, monitor: monitorSchema.optional() }).optional(),
  gateways: z
    .record(gatewayName, gatewaySchema, { error: 'must map gateway names to gateways' })
    .refine((gateways) => Object.keys(gateways).length > 0, { error: 'must define at least one gateway' }),
  groups: z
    .record(gatewayName, z.array(gatewayName, { error: 'must be a list of gateway names' }), {
      error: 'must map group names to lists of gateway names',
    })
    .optional(),
});

export type RawInventory = z.infer<typeof inventorySchema>;
export type RawGateway = z.infer<typeof gatewaySchema>;
export type RawSsh = z.infer<typeof sshSchema>;
export type RawMonitor = z.infer<typeof monitorSchema>;
export type RawRule = z.infer<typeof ruleSchema>;
