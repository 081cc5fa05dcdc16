/**
 * The packet-filter side of a gateway behind one interface. A backend owns some resource kinds
 * end to end: the facts sections that read them (and only its sections run on a gateway that uses
 * it), how their canonical form is parsed, how templates declare them, how changes to them are
 * applied atomically with their exact undo, what the boot-time restore does with them, which
 * kernel pieces and tools they need, and how the monitor swaps the balancing in.
 */
import type { ResourceChange } from '../model/changes.js';
import type { CheckResult, ModulePlan } from '../model/checks.js';
import type { FirewallFacts, HostFacts, ModuleFacts } from '../model/facts.js';
import type { FirewallBackendName, GatewaySpec, StickySettings } from '../model/inventory.js';
import type { IpFamily, Resource, ResourceKind } from '../model/resources.js';
import type { ApplyStep } from '../model/steps.js';
import type { ResourceSchema } from '../model/schema-helpers.js';
import type { SectionReader } from '../remote/sections.js';

/** What a backend's sections said: lbprov's objects as they are, and the backend's tools. */
export interface BackendFacts {
  resources: Resource[];
  facts: Pick<FirewallFacts, 'iptables' | 'nftables'>;
}

/** A playbook `firewall` entry: the template's text plus what the backend needs to read it. */
export interface FirewallTemplate {
  /** iptables: the table the fragment is for. */
  table?: string;
  text: string;
  family: IpFamily;
  /** Names the rendered line for errors: "templates/x.hbs (rendered line 3)". */
  at: (line: number) => string;
}

/** A file the boot-time restore reads, with the shell that puts it back (run by restore.sh). */
export interface BootPayload {
  path: string;
  content: string;
}

export interface FirewallBackend {
  readonly name: FirewallBackendName;
  /** Resource kinds this backend reads and writes. */
  readonly kinds: readonly ResourceKind[];
  /** Strict schemas of those kinds (discriminated by `kind`): facts and saved plans are read with them. */
  readonly resourceSchemas: readonly ResourceSchema[];
  /**
   * For `auto` on a gateway without lbprov: a shell test that the backend's tool is installed, and
   * the section whose exit code says the kernel lets it work. Absent: the fallback backend.
   */
  readonly autoProbe?: { present: string; section: string };
  /** Facts script sections (name, shell) that print the backend's state and tools for a family. */
  factsSections(family: IpFamily): [string, string][];
  readFacts(read: SectionReader, family: IpFamily, warnings: string[]): BackendFacts;
  /** For `auto`: whether its facts say this gateway can use it, and why in words. */
  usable(read: SectionReader): { usable: boolean; why: string };
  resourcesFromTemplate(template: FirewallTemplate): Resource[];
  /** Steps applying changes of this backend's kinds: atomic per table, each with its exact undo. */
  applySteps(changes: readonly ResourceChange[]): ApplyStep[];
  /** Tools, kernel pieces and leftovers this backend needs or warns about. */
  checks(gw: GatewaySpec, facts: HostFacts, desired: readonly Resource[]): CheckResult[];
  /** Netfilter modules the rendered objects use: which to load now, which at every boot. */
  modulePlan(desired: readonly Resource[], modules: ModuleFacts, facts: HostFacts['firewall']): ModulePlan;
  /** What /etc/lbprov/restore.sh restores at boot: the payload file and the shell that loads it. */
  bootPayload(desired: readonly Resource[]): BootPayload;
  /** Shell that loads a BootPayload file ($1) idempotently, touching only lbprov's objects. */
  readonly bootRestore: string;
  /** Where the xtables-addons condition match shows up in the facts (null: absent); only backends that have one. */
  conditionMatch?(modules: ModuleFacts, firewall: FirewallFacts): string | null;
  /** What this backend's templates see as `firewall.view` (values in the form the backend prints them). */
  templateView(gw: GatewaySpec): object;
  /** Shell the monitor runs when a link (index from 1) leaves the pool: forgets the sources sticking to it. */
  stickyFlush(link: { name: string; index: number }, sticky: StickySettings): string;
  /** Shell printing how many sources stick to the link now. */
  stickyCount(link: { name: string; index: number }, sticky: StickySettings): string;
  /** The monitor's command that reads a pre-rendered balancing payload on stdin and swaps it in atomically. */
  readonly swapCommand: string;
}
