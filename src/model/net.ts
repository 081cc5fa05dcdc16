/** Address and name rules shared by every layer that reads untrusted network values. */

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** Linux interface names: 1-15 bytes, no '/', ':', whitespace or control characters, not "." or "..". */
export function isInterfaceName(name: string): boolean {
  return (
    name !== '.' &&
    name !== '..' &&
    Buffer.byteLength(name) >= 1 &&
    Buffer.byteLength(name) <= 15 &&
    !/[\s/:\u0000-\u001f\u007f]/.test(name)
  );
}

export function isIpv4(text: string): boolean {
  return IPV4.test(text);
}

/** A validated dotted quad as an unsigned 32-bit number. */
export function ipv4ToNumber(text: string): number {
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** Whether `address` is inside `cidr` ("198.51.100.2/24"). */
export function inPrefix(address: string, cidr: string): boolean {
  const [net, len] = cidr.split('/');
  const bits = Number(len ?? 32);
  const size = 2 ** (32 - bits);
  return Math.floor(ipv4ToNumber(address) / size) === Math.floor(ipv4ToNumber(net!) / size);
}
