/**
 * The packet-filter side of a gateway behind one interface, so that a native
 * nftables backend (one `nft -f` per change, numgen and maps instead of
 * statistic/CONNMARK chains) is an addition beside iptables, not a rewrite.
 * A backend owns some resource kinds end to end: how the facts script reads
 * them, how their canonical form is parsed, how templates declare them and
 * how changes to them are applied atomically.
 */
import type { IpFamily, Resource, ResourceKind } from '../model/resources.js';
import type { ApplyStep, ChangePair } from '../apply/shell.js';

export interface FirewallBackend {
  readonly name: string;
  /** Resource kinds this backend reads and writes. */
  readonly kinds: readonly ResourceKind[];
  /** Facts script sections (name, shell) that print the backend's state for an address family. */
  factsSections(family: IpFamily): readonly (readonly [string, string])[];
  /** lbprov's resources in that output; `read(section, what)` returns a section's text or throws. */
  ownedResources(read: (section: string, what: string) => string, family: IpFamily, warnings: string[]): Resource[];
  /** Resources declared by a rendered template for one table; `at(line)` locates errors. */
  resourcesFromTemplate(table: string, text: string, family: IpFamily, at: (line: number) => string): Resource[];
  /** Steps applying the changes of this backend's kinds: each one atomic, with its exact undo. */
  applySteps(pairs: readonly ChangePair[]): ApplyStep[];
}
