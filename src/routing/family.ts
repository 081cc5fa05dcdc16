/** What differs between address families for iproute2. */
import type { IpFamily } from '../model/resources.js';

/** `ip -4` / `ip -6`. */
export function ipFamilyFlag(family: IpFamily): string {
  return family === 'ipv4' ? '-4' : '-6';
}
