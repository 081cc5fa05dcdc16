import { describe, expect, it } from 'vitest';
import {
  isGatewayName,
  isHostName,
  isIPv4,
  isInterfaceName,
  isLinkName,
  isLocalFilePath,
  isProxyJump,
  isSshHost,
  isSshUser,
  isUnicastIPv4,
} from '../../src/inventory/index.js';

const cases: [string, (s: string) => boolean, string[], string[]][] = [
  ['isInterfaceName', isInterfaceName,
    ['eth0', 'enp3s0f1', 'wlan0', 'br-lan', 'eth0.100', 'veth_a@1', 'x', 'a23456789012345'],
    ['', '.', '..', '-eth0', '.eth0', 'a234567890123456', 'eth 0', 'eth0:1', 'eth/0', 'eth+', '!eth0', 'eth0\n', 'éth0', 'eth;0']],
  ['isIPv4', isIPv4,
    ['0.0.0.0', '192.0.2.1', '255.255.255.255', '10.0.0.10'],
    ['', '192.0.2', '192.0.2.1.5', '192.0.2.256', '192.0.2.01', '010.0.0.1', ' 192.0.2.1', '192.0.2.1\n', '1e3.0.0.1', '0x7f.0.0.1', '١.١.١.١']],
  ['isUnicastIPv4', isUnicastIPv4,
    ['192.0.2.1', '198.51.100.254', '1.1.1.1', '223.255.255.255'],
    ['0.0.0.0', '0.1.2.3', '127.0.0.1', '224.0.0.1', '239.1.1.1', '240.0.0.1', '255.255.255.255', 'example.com']],
  ['isHostName', isHostName,
    ['gw-a1', 'gw.example.net', 'a', 'xn--bcher-kva.example', '1gw.example', `${'a'.repeat(63)}.example`],
    ['', '-gw', 'gw-', 'gw..example', 'gw.example.', 'gw_a1', 'gw a1', `${'a'.repeat(64)}.example`, `${'a.'.repeat(127)}ab`, '192.0.2.256', '10.0.0.1', 'gw;x', '$(x)']],
  ['isSshHost', isSshHost, ['192.0.2.1', 'gw.example.net'], ['192.0.2.01', '-oProxyCommand=x', '']],
  ['isLinkName', isLinkName, ['isp1', 'a', 'fibre_2', 'lte-backup', '0'], ['', '-isp', 'ISP1', 'isp 1', 'a234567890123456', 'isp.1', 'isp;1']],
  ['isGatewayName', isGatewayName, ['gw-a1', 'GW.paris_1', '1'], ['', '-gw', '.gw', '_gw', 'gw a', 'gw,a', 'gw:a', 'gw*', '!gw', '&gw', `a${'b'.repeat(63)}`]],
  ['isSshUser', isSshUser, ['root', 'admin', 'ops_team', 'a.b-c', '_svc'], ['', '-root', '.root', 'ro ot', 'root;', 'r@x', `a${'b'.repeat(32)}`]],
  ['isLocalFilePath', isLocalFilePath,
    ['/root/.ssh/id_ed25519', '~/.ssh/known_hosts', '/a/../b', '/keys/a+b=c,d@e%f'],
    ['', 'id_ed25519', './key', '~root/.ssh/id', '~', '/dir/', '/a b', "/a'b", '/a"b', '/a;b', '/a$b', '/a`b`', '/a\nb', '/a\u0000', `/${'a'.repeat(4096)}`]],
  ['isProxyJump', isProxyJump,
    ['bastion', 'jump@bastion.example.net', 'bastion:2222', 'a@b.example:22,c@192.0.2.7:2200'],
    ['', '-J', '@bastion', 'a@', 'bastion:', 'bastion:0', 'bastion:65536', 'a@b@c', 'a@b,', 'ssh://a@b', 'a b', 'bastion;x']],
];

describe.each(cases)('%s', (_name, check, accepted, refused) => {
  it.each(accepted)('accepts %j', (value) => expect(check(value)).toBe(true));
  it.each(refused)('refuses %j', (value) => expect(check(value)).toBe(false));
});
